//! The thin layer over the CUDA libraries this crate opens at run time: the only module with
//! `unsafe` code. Nothing is linked at build time, so no CUDA toolkit is needed to build.
//!
//! - libcuda (the driver): only its version is asked here ([`driver_version`]), before the
//!   cudarc bindings (`result.rs`) load every symbol they know and panic on a missing one.
//! - libnvrtc: the handful of functions a compile check needs, each wrapped so that it returns
//!   `Result` with NVRTC's own error string, never panicking on a vendor error code.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;

use libloading::Library;

/// `nvrtcResult`: 0 is `NVRTC_SUCCESS`.
type NvrtcResult = c_int;
/// `nvrtcProgram`: an opaque handle.
type NvrtcProgram = *mut c_void;

/// `NVRTC_ERROR_COMPILATION`: the source did not compile; the log says why.
const NVRTC_ERROR_COMPILATION: NvrtcResult = 6;

/// The driver library's file names, most specific first.
#[cfg(windows)]
const DRIVER_NAMES: &[&str] = &["nvcuda.dll"];
#[cfg(not(windows))]
const DRIVER_NAMES: &[&str] = &["libcuda.so.1", "libcuda.so"];

/// NVRTC's file names, newest first.
#[cfg(windows)]
const NVRTC_NAMES: &[&str] = &[
    "nvrtc64_120_0.dll",
    "nvrtc64_130_0.dll",
    "nvrtc64_112_0.dll",
];
#[cfg(not(windows))]
const NVRTC_NAMES: &[&str] = &[
    "libnvrtc.so.12",
    "libnvrtc.so.13",
    "libnvrtc.so",
    "libnvrtc.so.11.2",
];

fn open(path: &Path) -> Result<Library, String> {
    // SAFETY: opening a vendor library runs its initialisers; libcuda and libnvrtc have no
    // initialisers that depend on the caller, and nothing else in this process unloads them.
    unsafe { Library::new(path) }.map_err(|e| e.to_string())
}

/// The CUDA version the driver supports (`cuDriverGetVersion`: 1000 × major + 10 × minor),
/// or why the driver library cannot be opened or asked. Needs no `cuInit`.
pub(crate) fn driver_version() -> Result<i32, String> {
    let mut errors = Vec::new();
    for name in DRIVER_NAMES {
        let lib = match open(Path::new(name)) {
            Ok(lib) => lib,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        // SAFETY: cuDriverGetVersion has this prototype in cuda.h; the pointer is used while
        // `lib` is alive.
        let get: unsafe extern "C" fn(*mut c_int) -> c_int =
            *unsafe { lib.get(b"cuDriverGetVersion\0") }
                .map_err(|e| format!("{name} lacks cuDriverGetVersion: {e}"))?;
        let mut version: c_int = 0;
        // SAFETY: `version` is a live c_int the call writes.
        let code = unsafe { get(&mut version) };
        if code != 0 {
            return Err(format!("cuDriverGetVersion failed with CUresult {code}"));
        }
        return Ok(version);
    }
    Err(format!(
        "{} not found on the library search path ({})",
        DRIVER_NAMES[0],
        errors.join("; ")
    ))
}

/// The NVRTC entry points used here, copied out of the library `_lib` keeps loaded.
pub(crate) struct Nvrtc {
    /// Where NVRTC was found.
    pub path: PathBuf,
    version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> NvrtcResult,
    get_error_string: unsafe extern "C" fn(NvrtcResult) -> *const c_char,
    create_program: unsafe extern "C" fn(
        *mut NvrtcProgram,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> NvrtcResult,
    compile_program: unsafe extern "C" fn(NvrtcProgram, c_int, *const *const c_char) -> NvrtcResult,
    get_program_log_size: unsafe extern "C" fn(NvrtcProgram, *mut usize) -> NvrtcResult,
    get_program_log: unsafe extern "C" fn(NvrtcProgram, *mut c_char) -> NvrtcResult,
    get_ptx_size: unsafe extern "C" fn(NvrtcProgram, *mut usize) -> NvrtcResult,
    get_ptx: unsafe extern "C" fn(NvrtcProgram, *mut c_char) -> NvrtcResult,
    get_cubin_size: unsafe extern "C" fn(NvrtcProgram, *mut usize) -> NvrtcResult,
    get_cubin: unsafe extern "C" fn(NvrtcProgram, *mut c_char) -> NvrtcResult,
    destroy_program: unsafe extern "C" fn(*mut NvrtcProgram) -> NvrtcResult,
    /// nvrtcGetNumSupportedArchs / nvrtcGetSupportedArchs (CUDA 11.2 and later).
    supported_archs: Option<(
        unsafe extern "C" fn(*mut c_int) -> NvrtcResult,
        unsafe extern "C" fn(*mut c_int) -> NvrtcResult,
    )>,
    _lib: Library,
}

/// What one compilation produced.
pub(crate) enum Compiled {
    /// The binary (PTX text for `compute_XX`, a cubin for `sm_XX`) and the compiler's log.
    Ok { binary: Vec<u8>, log: String },
    /// `NVRTC_ERROR_COMPILATION` and the compiler's log.
    Failed { log: String },
}

/// A program handle destroyed on every path out of [`Nvrtc::compile`].
struct Program<'a> {
    nvrtc: &'a Nvrtc,
    handle: NvrtcProgram,
}

impl Drop for Program<'_> {
    fn drop(&mut self) {
        // SAFETY: `handle` came from nvrtcCreateProgram and is destroyed only here; the result
        // is ignored because nvrtcDestroyProgram fails only for an invalid handle.
        unsafe { (self.nvrtc.destroy_program)(&mut self.handle) };
    }
}

impl Nvrtc {
    /// Opens NVRTC from `explicit` (a file, or a directory holding one of the usual names),
    /// else from the usual names on the library search path and under `$CUDA_PATH`,
    /// `$CUDA_HOME` and /usr/local/cuda.
    pub(crate) fn load(explicit: Option<&Path>) -> Result<Nvrtc, String> {
        if let Some(p) = explicit.filter(|p| !p.exists()) {
            return Err(format!("CONCORD_NVRTC_PATH={} does not exist", p.display()));
        }
        let candidates: Vec<PathBuf> = match explicit {
            Some(p) if p.is_dir() => NVRTC_NAMES.iter().map(|n| p.join(n)).collect(),
            Some(p) => vec![p.to_path_buf()],
            None => {
                let mut c: Vec<PathBuf> = NVRTC_NAMES.iter().map(PathBuf::from).collect();
                let roots = ["CUDA_PATH", "CUDA_HOME"]
                    .iter()
                    .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
                    .chain(std::iter::once(PathBuf::from("/usr/local/cuda")));
                for root in roots {
                    for sub in ["lib64", "lib", "bin"] {
                        c.extend(NVRTC_NAMES.iter().map(|n| root.join(sub).join(n)));
                    }
                }
                for site in python_site_dirs() {
                    let lib = site.join("nvidia").join("cuda_nvrtc").join("lib");
                    c.extend(NVRTC_NAMES.iter().map(|n| lib.join(n)));
                }
                c
            }
        };
        let mut errors = Vec::new();
        for path in &candidates {
            if path.components().count() > 1 && !path.exists() {
                continue;
            }
            match open(path).and_then(|lib| Nvrtc::from_library(path.clone(), lib)) {
                Ok(n) => return Ok(n),
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
        let searched = match explicit {
            Some(p) => format!("CONCORD_NVRTC_PATH={}", p.display()),
            None => "the library search path, $CUDA_PATH, $CUDA_HOME, /usr/local/cuda and the \
                     nvidia-cuda-nvrtc Python package of python3; install it with \
                     `python3 -m pip install nvidia-cuda-nvrtc-cu12` (no GPU or toolkit needed; \
                     ci/install-nvrtc.sh does it in a venv) or set CONCORD_NVRTC_PATH to a \
                     libnvrtc file or its directory"
                .into(),
        };
        Err(format!(
            "libnvrtc not found in {searched}{}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        ))
    }

    fn from_library(path: PathBuf, lib: Library) -> Result<Nvrtc, String> {
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the symbol is NVRTC's C function of that name, and the field's type
                // is its prototype from nvrtc.h; the pointer is used only while `_lib` lives.
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{} lacks {}: {e}", path.display(), $name))?
            };
        }
        Ok(Nvrtc {
            version: sym!("nvrtcVersion"),
            get_error_string: sym!("nvrtcGetErrorString"),
            create_program: sym!("nvrtcCreateProgram"),
            compile_program: sym!("nvrtcCompileProgram"),
            get_program_log_size: sym!("nvrtcGetProgramLogSize"),
            get_program_log: sym!("nvrtcGetProgramLog"),
            get_ptx_size: sym!("nvrtcGetPTXSize"),
            get_ptx: sym!("nvrtcGetPTX"),
            get_cubin_size: sym!("nvrtcGetCUBINSize"),
            get_cubin: sym!("nvrtcGetCUBIN"),
            destroy_program: sym!("nvrtcDestroyProgram"),
            // SAFETY: as for `sym!`; both are optional (older NVRTC lacks them).
            supported_archs: unsafe {
                match (
                    lib.get(b"nvrtcGetNumSupportedArchs\0"),
                    lib.get(b"nvrtcGetSupportedArchs\0"),
                ) {
                    (Ok(count), Ok(list)) => Some((*count, *list)),
                    _ => None,
                }
            },
            path,
            _lib: lib,
        })
    }

    /// `Err` with the function's name and NVRTC's text for `code`, unless it is success.
    fn check(&self, function: &str, code: NvrtcResult) -> Result<(), String> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: nvrtcGetErrorString returns a static NUL-terminated string for any code.
        let text = unsafe { (self.get_error_string)(code) };
        let text = if text.is_null() {
            "unknown error".into()
        } else {
            // SAFETY: non-null, NUL-terminated and static (see above).
            unsafe { CStr::from_ptr(text) }.to_string_lossy()
        };
        Err(format!("{function} failed: {text} ({code})"))
    }

    /// nvrtcVersion: (major, minor).
    pub(crate) fn version(&self) -> Result<(i32, i32), String> {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: both pointers are to live c_ints.
        let code = unsafe { (self.version)(&mut major, &mut minor) };
        self.check("nvrtcVersion", code)?;
        Ok((major, minor))
    }

    /// The compute capabilities this NVRTC compiles for (`[50, 52, …, 90, 100, 120]`), or
    /// `None` when it is too old to say.
    pub(crate) fn supported_archs(&self) -> Option<Vec<i32>> {
        let (count_fn, list_fn) = self.supported_archs?;
        let mut count: c_int = 0;
        // SAFETY: the pointer is to a live c_int.
        let code = unsafe { count_fn(&mut count) };
        if code != 0 || !(0..=1024).contains(&count) {
            return None;
        }
        let mut list = vec![0 as c_int; count as usize];
        // SAFETY: `list` holds the `count` ints nvrtcGetSupportedArchs writes.
        let code = unsafe { list_fn(list.as_mut_ptr()) };
        (code == 0).then_some(list)
    }

    /// Reads a sized output (log, PTX, cubin) with its size and copy functions.
    fn read(
        &self,
        prog: NvrtcProgram,
        names: (&str, &str),
        size_fn: unsafe extern "C" fn(NvrtcProgram, *mut usize) -> NvrtcResult,
        get_fn: unsafe extern "C" fn(NvrtcProgram, *mut c_char) -> NvrtcResult,
    ) -> Result<Vec<u8>, String> {
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

    /// Compiles `source` (named `name` in messages) with `options`; `cubin` picks the cubin
    /// (for `--gpu-architecture=sm_XX`) over the PTX (for `compute_XX`). `Err` is a failing
    /// NVRTC call other than the compilation itself.
    pub(crate) fn compile(
        &self,
        source: &str,
        name: &str,
        options: &[String],
        cubin: bool,
    ) -> Result<Compiled, String> {
        let c_source = CString::new(source).map_err(|_| "source holds a NUL byte".to_string())?;
        let c_name = CString::new(name).map_err(|_| "name holds a NUL byte".to_string())?;
        let c_options = options
            .iter()
            .map(|o| CString::new(o.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "an option holds a NUL byte".to_string())?;
        let option_ptrs: Vec<*const c_char> = c_options.iter().map(|o| o.as_ptr()).collect();
        let option_count = c_int::try_from(option_ptrs.len()).map_err(|e| e.to_string())?;

        let mut handle: NvrtcProgram = ptr::null_mut();
        // SAFETY: source and name are NUL-terminated and outlive the call; no headers are
        // passed (count 0, null arrays), which nvrtc.h allows.
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
        self.check("nvrtcCreateProgram", code)?;
        let prog = Program {
            nvrtc: self,
            handle,
        };

        // SAFETY: `prog.handle` is live; `option_ptrs` holds `option_count` pointers to
        // NUL-terminated strings that outlive the call.
        let code =
            unsafe { (self.compile_program)(prog.handle, option_count, option_ptrs.as_ptr()) };
        let log = self.read(
            prog.handle,
            ("nvrtcGetProgramLogSize", "nvrtcGetProgramLog"),
            self.get_program_log_size,
            self.get_program_log,
        )?;
        let log = String::from_utf8_lossy(&log)
            .trim_end_matches('\0')
            .trim()
            .to_string();
        if code == NVRTC_ERROR_COMPILATION {
            return Ok(Compiled::Failed { log });
        }
        self.check("nvrtcCompileProgram", code)?;
        let binary = if cubin {
            self.read(
                prog.handle,
                ("nvrtcGetCUBINSize", "nvrtcGetCUBIN"),
                self.get_cubin_size,
                self.get_cubin,
            )?
        } else {
            let mut ptx = self.read(
                prog.handle,
                ("nvrtcGetPTXSize", "nvrtcGetPTX"),
                self.get_ptx_size,
                self.get_ptx,
            )?;
            while ptx.last() == Some(&0) {
                ptx.pop();
            }
            ptx
        };
        Ok(Compiled::Ok { binary, log })
    }
}

/// Where `python3` keeps packages: the pip wheel `nvidia-cuda-nvrtc-cu12` puts libnvrtc under
/// `<site-packages>/nvidia/cuda_nvrtc/lib`, which is on no library search path.
fn python_site_dirs() -> Vec<PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys; print('\\n'.join(p for p in sys.path if p))",
        ])
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(PathBuf::from)
            .collect(),
        _ => Vec::new(),
    }
}
