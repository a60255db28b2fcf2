//! One safe function per HIP runtime and hiprtc call: each returns `Result` with the vendor's
//! error decoded (function name, its error string, its code), never panics on a vendor error
//! code, and frees what it creates on every path.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;

use concord_kernels::host::KernelArg;
use libloading::Library;

use crate::metadata::{self, ParamKind};
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

/// The HIP runtime entry points the backend uses, copied out of the library `_lib` keeps
/// loaded. Every device allocation and module holds an `Arc<Hip>`, so the library outlives
/// them.
pub struct Hip {
    /// Where libamdhip64 was found.
    pub path: PathBuf,
    init: sys::HipInit,
    get_device_count: sys::HipGetDeviceCount,
    driver_get_version: sys::HipDriverGetVersion,
    get_error_string: sys::HipGetErrorString,
    get_error_name: sys::HipGetErrorName,
    set_device: sys::HipSetDevice,
    device_get: sys::HipDeviceGet,
    device_get_name: sys::HipDeviceGetName,
    get_device_properties: sys::HipGetDeviceProperties,
    malloc: sys::HipMalloc,
    free: sys::HipFree,
    memcpy_htod: sys::HipMemcpyHtoD,
    memcpy_dtoh: sys::HipMemcpyDtoH,
    module_load_data: sys::HipModuleLoadData,
    module_unload: sys::HipModuleUnload,
    module_get_function: sys::HipModuleGetFunction,
    module_launch_kernel: sys::HipModuleLaunchKernel,
    device_synchronize: sys::HipDeviceSynchronize,
    mem_get_info: sys::HipMemGetInfo,
    _lib: Library,
}

/// The size of the zeroed buffer `hipGetDeviceProperties` writes into: far larger than
/// `hipDeviceProp_t` of ROCm 5.x (about 800 bytes) or `hipDeviceProp_tR0600` (about 1.5 KiB).
pub const DEVICE_PROPERTIES_BYTES: usize = 16 * 1024;

impl Hip {
    /// Opens libamdhip64 (see [`sys::HIP_NAMES`]), or says why it cannot be opened.
    pub fn load() -> Result<Hip, String> {
        open_first(&candidates(sys::HIP_NAMES, None), |path, lib| {
            // SAFETY: each field's type is the prototype of the symbol of that name in
            // hip_runtime_api.h (`hipGetDevicePropertiesR0600` and `hipGetDeviceProperties`
            // differ only in the struct they fill, which is taken as untyped memory), and the
            // pointers live in the same struct as `lib`.
            unsafe {
                Ok(Hip {
                    init: sys::symbol(&lib, "hipInit")?,
                    get_device_count: sys::symbol(&lib, "hipGetDeviceCount")?,
                    driver_get_version: sys::symbol(&lib, "hipDriverGetVersion")?,
                    get_error_string: sys::symbol(&lib, "hipGetErrorString")?,
                    get_error_name: sys::symbol(&lib, "hipGetErrorName")?,
                    set_device: sys::symbol(&lib, "hipSetDevice")?,
                    device_get: sys::symbol(&lib, "hipDeviceGet")?,
                    device_get_name: sys::symbol(&lib, "hipDeviceGetName")?,
                    get_device_properties: sys::first_symbol(
                        &lib,
                        &["hipGetDevicePropertiesR0600", "hipGetDeviceProperties"],
                    )?,
                    malloc: sys::symbol(&lib, "hipMalloc")?,
                    free: sys::symbol(&lib, "hipFree")?,
                    memcpy_htod: sys::symbol(&lib, "hipMemcpyHtoD")?,
                    memcpy_dtoh: sys::symbol(&lib, "hipMemcpyDtoH")?,
                    module_load_data: sys::symbol(&lib, "hipModuleLoadData")?,
                    module_unload: sys::symbol(&lib, "hipModuleUnload")?,
                    module_get_function: sys::symbol(&lib, "hipModuleGetFunction")?,
                    module_launch_kernel: sys::symbol(&lib, "hipModuleLaunchKernel")?,
                    device_synchronize: sys::symbol(&lib, "hipDeviceSynchronize")?,
                    mem_get_info: sys::symbol(&lib, "hipMemGetInfo")?,
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
        // SAFETY: hipGetErrorName accepts any code and returns a static string.
        let name = static_text(unsafe { (self.get_error_name)(code) });
        // ROCm 5.x's hipGetErrorString returns the name itself; later versions a sentence.
        let text = if text == name || name == "unknown error" {
            text
        } else {
            format!("{name}: {text}")
        };
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

    /// hipSetDevice: makes `ordinal` the calling thread's current device (HIP keeps the
    /// current device per host thread; allocations, copies, module loads and launches on the
    /// null stream go to it).
    pub fn set_device(&self, ordinal: i32) -> Result<(), CallError> {
        // SAFETY: hipSetDevice takes the ordinal by value and validates it.
        self.check("hipSetDevice", unsafe { (self.set_device)(ordinal) })
    }

    /// hipDeviceGet + hipDeviceGetName: the marketing name of device `ordinal`.
    pub fn device_name(&self, ordinal: i32) -> Result<String, CallError> {
        let mut device: sys::HipDevice = 0;
        // SAFETY: `device` is a live hipDevice_t; the ordinal is validated by HIP.
        self.check("hipDeviceGet", unsafe {
            (self.device_get)(&mut device, ordinal)
        })?;
        let mut name = [0 as c_char; 256];
        // SAFETY: `name` holds `len` = 256 bytes; HIP writes at most `len` bytes, NUL included.
        self.check("hipDeviceGetName", unsafe {
            (self.device_get_name)(name.as_mut_ptr(), name.len() as c_int, device)
        })?;
        let bytes: Vec<u8> = name
            .iter()
            .map(|&c| c as u8)
            .take_while(|&b| b != 0)
            .collect();
        Ok(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    /// hipGetDeviceProperties of device `ordinal`, as the raw bytes of the struct followed by
    /// zeros ([`DEVICE_PROPERTIES_BYTES`] in all): the layout differs between ROCm 5.x and
    /// 6.x, so the caller looks for what it needs in the bytes instead of naming fields.
    pub fn device_properties(&self, ordinal: i32) -> Result<Vec<u8>, CallError> {
        // Zeroed and 8-byte aligned (u64 elements), as the struct's size_t fields need.
        let mut raw = vec![0u64; DEVICE_PROPERTIES_BYTES / 8];
        // SAFETY: `raw` is a live, writable, 8-byte-aligned buffer of 16 KiB, larger than any
        // hipDeviceProp_t layout HIP may write into it (both are under 2 KiB).
        self.check("hipGetDeviceProperties", unsafe {
            (self.get_device_properties)(raw.as_mut_ptr().cast(), ordinal)
        })?;
        Ok(raw.iter().flat_map(|w| w.to_ne_bytes()).collect())
    }

    /// hipMalloc of `bytes` (at least 1) on the calling thread's current device `ordinal`.
    pub fn malloc(self: &Arc<Self>, ordinal: i32, bytes: usize) -> Result<DeviceMem, CallError> {
        let bytes = bytes.max(1);
        let mut ptr: *mut c_void = ptr::null_mut();
        // SAFETY: `ptr` is a live pointer slot for hipMalloc to fill.
        self.check("hipMalloc", unsafe { (self.malloc)(&mut ptr, bytes) })?;
        Ok(DeviceMem {
            hip: Arc::clone(self),
            ordinal,
            ptr,
            bytes,
        })
    }

    /// hipDeviceSynchronize: waits for everything enqueued on the current device.
    pub fn synchronize(&self) -> Result<(), CallError> {
        // SAFETY: no arguments; waits for the current device.
        self.check("hipDeviceSynchronize", unsafe {
            (self.device_synchronize)()
        })
    }

    /// hipMemGetInfo: (free, total) bytes of the current device.
    pub fn memory(&self) -> Result<(usize, usize), CallError> {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: both pointers are to live locals the call writes one size_t each into.
        self.check("hipMemGetInfo", unsafe {
            (self.mem_get_info)(&mut free, &mut total)
        })?;
        Ok((free, total))
    }

    /// hipModuleLoadData of the code object `code` on the current device, then
    /// hipModuleGetFunction for each of `names`, each with the explicit parameters the code
    /// object's metadata declares for it (launches are checked against them).
    pub fn load_module(
        self: &Arc<Self>,
        code: &[u8],
        names: &[&'static str],
    ) -> Result<Module, ModuleError> {
        let params = metadata::kernel_params(code).map_err(ModuleError::Metadata)?;
        // The image is kept alive (and 8-byte aligned) as long as the module, in case the
        // runtime refers to it after loading.
        let mut image = vec![0u64; code.len().div_ceil(8)];
        for (word, chunk) in image.iter_mut().zip(code.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_ne_bytes(b);
        }
        let mut raw: sys::HipModule = ptr::null_mut();
        // SAFETY: `raw` is a live handle slot; `image` holds a complete code object (ELF,
        // whose header states its own size) and outlives the module (it is stored in it).
        self.check("hipModuleLoadData", unsafe {
            (self.module_load_data)(&mut raw, image.as_ptr().cast())
        })
        .map_err(ModuleError::Call)?;
        let mut module = Module {
            hip: Arc::clone(self),
            raw,
            functions: Vec::with_capacity(names.len()),
            _image: image,
        };
        for &name in names {
            let params = params.get(name).cloned().ok_or_else(|| {
                ModuleError::Metadata(format!(
                    "the code object's metadata does not describe kernel {name}"
                ))
            })?;
            let c_name = CString::new(name).map_err(|_| {
                ModuleError::Metadata(format!("kernel name {name:?} holds a NUL byte"))
            })?;
            let mut f: sys::HipFunction = ptr::null_mut();
            // SAFETY: `f` is a live handle slot, `module.raw` a loaded module, `c_name`
            // NUL-terminated and alive for the call.
            self.check("hipModuleGetFunction", unsafe {
                (self.module_get_function)(&mut f, module.raw, c_name.as_ptr())
            })
            .map_err(ModuleError::Call)?;
            module.functions.push(Function {
                name,
                raw: f,
                params,
            });
        }
        Ok(module)
    }

    /// hipModuleLaunchKernel of `f` (a function of a module loaded on the current device) on
    /// the null stream, with a 1-D grid of `grid` blocks of `block` threads, no dynamic shared
    /// memory, and `args` passed through `kernelParams`. `args` must match the parameters the
    /// code object declares for `f`, one for one: a device allocation for a global buffer, a
    /// `u32` or `f32` for a 4-byte value, a `u64` for an 8-byte value; otherwise nothing is
    /// launched and the error says which argument differs.
    pub fn launch(
        &self,
        f: &Function,
        grid: u32,
        block: u32,
        args: &[KernelArg<'_, DeviceMem>],
    ) -> Result<(), LaunchError> {
        check_args(f.name, &f.params, args)?;
        if grid == 0 || block == 0 {
            return Ok(());
        }
        // One 8-byte slot per argument; HIP copies `size` bytes (from the metadata) from the
        // start of each slot, where every field of the union lies.
        let mut values: Vec<ParamValue> = args
            .iter()
            .map(|a| match a {
                KernelArg::Mem(m) => ParamValue { ptr: m.ptr },
                KernelArg::U32(v) => ParamValue { u32: *v },
                KernelArg::U64(v) => ParamValue { u64: *v },
                KernelArg::F32(v) => ParamValue { f32: *v },
            })
            .collect();
        let mut pointers: Vec<*mut c_void> = values
            .iter_mut()
            .map(|v| (v as *mut ParamValue).cast::<c_void>())
            .collect();
        // SAFETY: `f.raw` is a function of a module that `f`'s borrow keeps loaded; the grid
        // and block are non-zero and 1-D; `pointers` holds one pointer per kernel parameter
        // (checked above against the code object's metadata), each to a live 8-byte slot
        // whose leading bytes hold a value of the parameter's size and kind — a device
        // pointer to the start of a live allocation (the `DeviceMem` borrows outlive the
        // call) or a scalar. HIP copies the arguments before returning. `extra` is null.
        let code = unsafe {
            (self.module_launch_kernel)(
                f.raw,
                grid,
                1,
                1,
                block,
                1,
                1,
                0,
                ptr::null_mut(),
                pointers.as_mut_ptr(),
                ptr::null_mut(),
            )
        };
        self.check("hipModuleLaunchKernel", code)
            .map_err(LaunchError::Call)
    }
}

/// One kernel argument's storage for `kernelParams`: every field starts at offset 0.
#[repr(C)]
#[derive(Clone, Copy)]
union ParamValue {
    ptr: *mut c_void,
    u32: u32,
    u64: u64,
    f32: f32,
}

/// Whether `args` match `params` one for one (see [`Hip::launch`]).
pub fn check_args<M>(
    kernel: &str,
    params: &[ParamKind],
    args: &[KernelArg<'_, M>],
) -> Result<(), LaunchError> {
    let mismatch = |message: String| Err(LaunchError::Arguments(message));
    if args.len() != params.len() {
        return mismatch(format!(
            "kernel {kernel}: {} arguments for {} parameters",
            args.len(),
            params.len()
        ));
    }
    for (i, (a, p)) in args.iter().zip(params).enumerate() {
        let fits = matches!(
            (a, p),
            (KernelArg::Mem(_), ParamKind::Pointer)
                | (KernelArg::U32(_) | KernelArg::F32(_), ParamKind::Value4)
                | (KernelArg::U64(_), ParamKind::Value8)
        );
        if !fits {
            let given = match a {
                KernelArg::Mem(_) => "a device buffer",
                KernelArg::U32(_) => "a u32",
                KernelArg::U64(_) => "a u64",
                KernelArg::F32(_) => "an f32",
            };
            return mismatch(format!(
                "kernel {kernel}: argument {i} is {given}, the parameter is {p}"
            ));
        }
    }
    Ok(())
}

/// Why a module could not be loaded.
#[derive(Debug)]
pub enum ModuleError {
    /// A failing HIP call.
    Call(CallError),
    /// The code object's kernel metadata is missing or not understood.
    Metadata(String),
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleError::Call(e) => e.fmt(f),
            ModuleError::Metadata(m) => write!(f, "code object metadata: {m}"),
        }
    }
}

/// Why a kernel was not launched.
#[derive(Debug)]
pub enum LaunchError {
    /// A failing HIP call.
    Call(CallError),
    /// The arguments do not match the kernel's parameters.
    Arguments(String),
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::Call(e) => e.fmt(f),
            LaunchError::Arguments(m) => f.write_str(m),
        }
    }
}

/// Device memory from hipMalloc, freed with hipFree when dropped.
pub struct DeviceMem {
    hip: Arc<Hip>,
    ordinal: i32,
    ptr: *mut c_void,
    /// The size of the allocation.
    bytes: usize,
}

// SAFETY: a device pointer is an address in the device's memory, usable from any host thread
// (HIP's API is thread-safe; the device is made current before each use); DeviceMem has no
// interior state besides it.
unsafe impl Send for DeviceMem {}
// SAFETY: as above; every method takes `&self` and only passes the address to HIP.
unsafe impl Sync for DeviceMem {}

impl DeviceMem {
    fn range(&self, function: &'static str, offset: usize, len: usize) -> Result<(), CallError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.bytes => Ok(()),
            _ => Err(CallError {
                function,
                text: format!(
                    "{len} bytes at offset {offset} outside an allocation of {} bytes",
                    self.bytes
                ),
                // hipErrorInvalidValue.
                code: 1,
            }),
        }
    }

    /// hipMemcpyHtoD of `src` to byte `offset`, after the work enqueued before it on the
    /// null stream; returns when `src` may be reused.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<(), CallError> {
        self.range("hipMemcpyHtoD", offset, src.len())?;
        if src.is_empty() {
            return Ok(());
        }
        self.hip.set_device(self.ordinal)?;
        // SAFETY: the destination range lies inside this live allocation (checked above); the
        // source is `src.len()` readable bytes (HIP only reads through the non-const `src`).
        self.hip.check("hipMemcpyHtoD", unsafe {
            (self.hip.memcpy_htod)(
                self.ptr.wrapping_byte_add(offset),
                src.as_ptr().cast_mut().cast(),
                src.len(),
            )
        })
    }

    /// hipMemcpyDtoH from byte `offset` into `dst`, after all work enqueued on the null
    /// stream; returns when `dst` holds the bytes.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), CallError> {
        self.range("hipMemcpyDtoH", offset, dst.len())?;
        if dst.is_empty() {
            return Ok(());
        }
        self.hip.set_device(self.ordinal)?;
        // SAFETY: the source range lies inside this live allocation (checked above); `dst` is
        // `dst.len()` writable bytes, exclusively borrowed for the call.
        self.hip.check("hipMemcpyDtoH", unsafe {
            (self.hip.memcpy_dtoh)(
                dst.as_mut_ptr().cast(),
                self.ptr.wrapping_byte_add(offset),
                dst.len(),
            )
        })
    }
}

impl Drop for DeviceMem {
    fn drop(&mut self) {
        // hipFree "performs an implicit hipDeviceSynchronize()" (hip_runtime_api.h) of the
        // current device, made the allocation's device first: kernels enqueued with this
        // memory (scratch dropped right after its launches) finish before it is released.
        // Errors are ignored: a drop cannot report them, and must never panic.
        let _ = self.hip.set_device(self.ordinal);
        // SAFETY: `ptr` came from hipMalloc and is freed exactly once, here.
        let _ = unsafe { (self.hip.free)(self.ptr) };
    }
}

/// A loaded code object and its kernels, unloaded when dropped.
pub struct Module {
    hip: Arc<Hip>,
    raw: sys::HipModule,
    functions: Vec<Function>,
    _image: Vec<u64>,
}

// SAFETY: module and function handles may be used from any host thread (HIP's API is
// thread-safe); launching a function needs no exclusive access (arguments are passed by
// value to each launch, unlike OpenCL's clSetKernelArg).
unsafe impl Send for Module {}
// SAFETY: as above.
unsafe impl Sync for Module {}

impl Module {
    /// The kernel `name`, if it was loaded.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: `raw` came from hipModuleLoadData and is unloaded exactly once, here; its
        // functions go with it (they are fields of this struct). Errors are ignored.
        let _ = unsafe { (self.hip.module_unload)(self.raw) };
    }
}

/// A kernel of a [`Module`] and the explicit parameters its metadata declares.
pub struct Function {
    name: &'static str,
    raw: sys::HipFunction,
    params: Vec<ParamKind>,
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
