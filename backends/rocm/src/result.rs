//! One safe function per HIP runtime and hiprtc call: each returns `Result` with the vendor's
//! error decoded (function name, its error string, its code), never panics on a vendor error
//! code, and frees what it creates on every path.

use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr;

use libloading::Library;

use crate::sys;

/// A failing HIP or hiprtc call: the function, the library's text for the code, the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The vendor function that failed (`hipInit`, `hiprtcCompileProgram`, …).
    pub function: &'static str,
    /// `hipGetErrorString` / `hiprtcGetErrorString` of the code.
    pub text: String,
    /// The `hipError_t` / `hiprtcResult` code.
    pub code: i32,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.function, self.text, self.code)
    }
}

/// Reads a static NUL-terminated vendor string, `"unknown error"` when null.
fn static_text(text: *const c_char) -> String {
    if text.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: hipGetErrorString / hiprtcGetErrorString return a static NUL-terminated
        // string for any code (checked non-null above).
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Opens the first of `candidates` that loads and yields `T` through `build`.
fn open_first<T>(
    candidates: &[PathBuf],
    build: impl Fn(PathBuf, Library) -> Result<T, String>,
) -> Result<T, Vec<String>> {
    let mut errors = Vec::new();
    for path in candidates {
        if path.components().count() > 1 && !path.exists() {
            continue;
        }
        match sys::open(path).and_then(|lib| build(path.clone(), lib)) {
            Ok(t) => return Ok(t),
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    Err(errors)
}

/// `names` as bare names (library search path), then under `$ROCM_PATH/lib` and
/// /opt/rocm/lib; or only inside `explicit` (a file, or a directory holding one of `names`).
fn candidates(names: &[&str], explicit: Option<&Path>) -> Vec<PathBuf> {
    match explicit {
        Some(p) if p.is_dir() => names.iter().map(|n| p.join(n)).collect(),
        Some(p) => vec![p.to_path_buf()],
        None => {
            let mut c: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
            let roots = std::env::var_os("ROCM_PATH")
                .map(PathBuf::from)
                .into_iter()
                .chain(std::iter::once(PathBuf::from("/opt/rocm")));
            for root in roots {
                c.extend(names.iter().map(|n| root.join("lib").join(n)));
            }
            c
        }
    }
}

fn describe(what: &str, errors: Vec<String>) -> String {
    if errors.is_empty() {
        format!(
            "{what} not found on the library search path, under $ROCM_PATH/lib or /opt/rocm/lib"
        )
    } else {
        format!("{what} could not be loaded ({})", errors.join("; "))
    }
}

/// The HIP runtime entry points `probe` needs, copied out of the library `_lib` keeps loaded.
pub struct Hip {
    /// Where libamdhip64 was found.
    pub path: PathBuf,
    init: sys::HipInit,
    get_device_count: sys::HipGetDeviceCount,
    driver_get_version: sys::HipDriverGetVersion,
    get_error_string: sys::HipGetErrorString,
    _lib: Library,
}

impl Hip {
    /// Opens libamdhip64 (see [`sys::HIP_NAMES`]), or says why it cannot be opened.
    pub fn load() -> Result<Hip, String> {
        open_first(&candidates(sys::HIP_NAMES, None), |path, lib| {
            // SAFETY: each field's type is the prototype of the symbol of that name in
            // hip_runtime_api.h, and the pointers live in the same struct as `lib`.
            unsafe {
                Ok(Hip {
                    init: sys::symbol(&lib, "hipInit")?,
                    get_device_count: sys::symbol(&lib, "hipGetDeviceCount")?,
                    driver_get_version: sys::symbol(&lib, "hipDriverGetVersion")?,
                    get_error_string: sys::symbol(&lib, "hipGetErrorString")?,
                    path,
                    _lib: lib,
                })
            }
        })
        .map_err(|e| describe("libamdhip64", e))
    }

    fn check(&self, function: &'static str, code: sys::HipError) -> Result<(), CallError> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: hipGetErrorString accepts any code and returns a static string.
        let text = static_text(unsafe { (self.get_error_string)(code) });
        Err(CallError {
            function,
            text,
            code,
        })
    }

    /// hipInit(0).
    pub fn init(&self) -> Result<(), CallError> {
        // SAFETY: hipInit takes flags by value; 0 is the only documented value.
        self.check("hipInit", unsafe { (self.init)(0) })
    }

    /// hipGetDeviceCount.
    pub fn device_count(&self) -> Result<i32, CallError> {
        let mut count: c_int = 0;
        // SAFETY: `count` is a live c_int.
        self.check("hipGetDeviceCount", unsafe {
            (self.get_device_count)(&mut count)
        })?;
        Ok(count)
    }

    /// hipDriverGetVersion.
    pub fn driver_version(&self) -> Result<i32, CallError> {
        let mut version: c_int = 0;
        // SAFETY: `version` is a live c_int.
        self.check("hipDriverGetVersion", unsafe {
            (self.driver_get_version)(&mut version)
        })?;
        Ok(version)
    }
}

/// The hiprtc entry points a compile check needs, copied out of the library `_lib` keeps
/// loaded.
pub struct Hiprtc {
    /// Where hiprtc was found (libhiprtc, or libamdhip64 before ROCm 6.0).
    pub path: PathBuf,
    version: sys::HiprtcVersion,
    get_error_string: sys::HiprtcGetErrorString,
    create_program: sys::HiprtcCreateProgram,
    compile_program: sys::HiprtcCompileProgram,
    get_program_log_size: sys::HiprtcGetProgramLogSize,
    get_program_log: sys::HiprtcGetProgramLog,
    get_code_size: sys::HiprtcGetCodeSize,
    get_code: sys::HiprtcGetCode,
    destroy_program: sys::HiprtcDestroyProgram,
    _lib: Library,
}

/// What one compilation produced.
pub enum Compiled {
    /// The code object (an AMDGPU ELF) and the compiler's log.
    Ok {
        /// The code object.
        code: Vec<u8>,
        /// Warnings, if any.
        log: String,
    },
    /// `HIPRTC_ERROR_COMPILATION` and the compiler's log.
    Failed {
        /// Why it failed.
        log: String,
    },
}

/// A program handle destroyed on every path out of [`Hiprtc::compile`].
struct Program<'a> {
    rtc: &'a Hiprtc,
    handle: sys::HiprtcProgram,
}

impl Drop for Program<'_> {
    fn drop(&mut self) {
        // SAFETY: `handle` came from hiprtcCreateProgram and is destroyed only here; the
        // result is ignored because hiprtcDestroyProgram fails only for an invalid handle.
        unsafe { (self.rtc.destroy_program)(&mut self.handle) };
    }
}

impl Hiprtc {
    /// Opens hiprtc from `explicit` (a file, or a directory holding one of the usual names),
    /// else from libhiprtc (ROCm ≥ 6.0) or libamdhip64 (ROCm 5.x) on the library search path,
    /// under `$ROCM_PATH/lib` and /opt/rocm/lib.
    pub fn load(explicit: Option<&Path>) -> Result<Hiprtc, String> {
        let names: Vec<&str> = sys::HIPRTC_NAMES
            .iter()
            .chain(sys::HIP_NAMES)
            .copied()
            .collect();
        open_first(&candidates(&names, explicit), |path, lib| {
            // SAFETY: each field's type is the prototype of the symbol of that name in
            // hiprtc.h, and the pointers live in the same struct as `lib`.
            unsafe {
                Ok(Hiprtc {
                    version: sys::symbol(&lib, "hiprtcVersion")?,
                    get_error_string: sys::symbol(&lib, "hiprtcGetErrorString")?,
                    create_program: sys::symbol(&lib, "hiprtcCreateProgram")?,
                    compile_program: sys::symbol(&lib, "hiprtcCompileProgram")?,
                    get_program_log_size: sys::symbol(&lib, "hiprtcGetProgramLogSize")?,
                    get_program_log: sys::symbol(&lib, "hiprtcGetProgramLog")?,
                    get_code_size: sys::symbol(&lib, "hiprtcGetCodeSize")?,
                    get_code: sys::symbol(&lib, "hiprtcGetCode")?,
                    destroy_program: sys::symbol(&lib, "hiprtcDestroyProgram")?,
                    path,
                    _lib: lib,
                })
            }
        })
        .map_err(|e| describe("hiprtc (libhiprtc or libamdhip64)", e))
    }

    fn check(&self, function: &'static str, code: sys::HiprtcResult) -> Result<(), CallError> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: hiprtcGetErrorString accepts any code and returns a static string.
        let text = static_text(unsafe { (self.get_error_string)(code) });
        Err(CallError {
            function,
            text,
            code,
        })
    }

    /// hiprtcVersion: (major, minor).
    pub fn version(&self) -> Result<(i32, i32), CallError> {
        let (mut major, mut minor): (c_int, c_int) = (0, 0);
        // SAFETY: both pointers are to live c_ints.
        self.check("hiprtcVersion", unsafe {
            (self.version)(&mut major, &mut minor)
        })?;
        Ok((major, minor))
    }

    /// Reads a sized output (log, code object) with its size and copy functions.
    fn read(
        &self,
        prog: sys::HiprtcProgram,
        names: (&'static str, &'static str),
        size_fn: unsafe extern "C" fn(sys::HiprtcProgram, *mut usize) -> sys::HiprtcResult,
        get_fn: unsafe extern "C" fn(sys::HiprtcProgram, *mut c_char) -> sys::HiprtcResult,
    ) -> Result<Vec<u8>, CallError> {
        let mut size = 0usize;
        // SAFETY: `prog` is a live program handle and `size` a live usize.
        self.check(names.0, unsafe { size_fn(prog, &mut size) })?;
        let mut buf = vec![0u8; size];
        if size > 0 {
            // SAFETY: `buf` holds the `size` bytes the size function asked for.
            self.check(names.1, unsafe { get_fn(prog, buf.as_mut_ptr().cast()) })?;
        }
        Ok(buf)
    }

    /// Compiles `source` (named `name` in messages) with `options`. `Err` is a failing hiprtc
    /// call other than the compilation itself (or a NUL byte in an argument).
    pub fn compile(
        &self,
        source: &str,
        name: &str,
        options: &[String],
    ) -> Result<Compiled, CallError> {
        let invalid = |what: &str| CallError {
            function: "hiprtcCreateProgram",
            text: format!("{what} holds a NUL byte"),
            code: 3,
        };
        let c_source = CString::new(source).map_err(|_| invalid("the source"))?;
        let c_name = CString::new(name).map_err(|_| invalid("the name"))?;
        let c_options = options
            .iter()
            .map(|o| CString::new(o.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("an option"))?;
        let option_ptrs: Vec<*const c_char> = c_options.iter().map(|o| o.as_ptr()).collect();
        let option_count =
            c_int::try_from(option_ptrs.len()).map_err(|_| invalid("the option count"))?;

        let mut handle: sys::HiprtcProgram = ptr::null_mut();
        // SAFETY: source and name are NUL-terminated and outlive the call; no headers are
        // passed (count 0, null arrays), which hiprtc.h allows.
        let code = unsafe {
            (self.create_program)(
                &mut handle,
                c_source.as_ptr(),
                c_name.as_ptr(),
                0,
                ptr::null(),
                ptr::null(),
            )
        };
        self.check("hiprtcCreateProgram", code)?;
        let prog = Program { rtc: self, handle };

        // SAFETY: `prog.handle` is live; `option_ptrs` holds `option_count` pointers to
        // NUL-terminated strings that outlive the call.
        let code =
            unsafe { (self.compile_program)(prog.handle, option_count, option_ptrs.as_ptr()) };
        let log = self.read(
            prog.handle,
            ("hiprtcGetProgramLogSize", "hiprtcGetProgramLog"),
            self.get_program_log_size,
            self.get_program_log,
        )?;
        let log = String::from_utf8_lossy(&log)
            .trim_end_matches('\0')
            .trim()
            .to_string();
        if code == sys::HIPRTC_ERROR_COMPILATION {
            return Ok(Compiled::Failed { log });
        }
        self.check("hiprtcCompileProgram", code).map_err(|mut e| {
            if !log.is_empty() {
                e.text = format!("{}\n{log}", e.text);
            }
            e
        })?;
        let code = self.read(
            prog.handle,
            ("hiprtcGetCodeSize", "hiprtcGetCode"),
            self.get_code_size,
            self.get_code,
        )?;
        Ok(Compiled::Ok { code, log })
    }
}
