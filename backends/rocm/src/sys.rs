//! Raw FFI of the HIP runtime (libamdhip64) and of hiprtc, opened at run time with
//! libloading: the C types, the function pointer types copied from `hip_runtime_api.h` and
//! `hiprtc.h`, and the libraries' file names. Nothing here calls a vendor function; the
//! `result` module does, one safe function per call.
//!
//! hiprtc lives inside libamdhip64 up to ROCm 5.x and in its own libhiprtc from ROCm 6.0 on,
//! so both are searched for the `hiprtc*` symbols.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;

use libloading::Library;

/// `hipError_t`: 0 is `hipSuccess`.
pub type HipError = c_int;
/// `hiprtcResult`: 0 is `HIPRTC_SUCCESS`.
pub type HiprtcResult = c_int;
/// `hiprtcProgram`: an opaque handle.
pub type HiprtcProgram = *mut c_void;

/// `HIPRTC_ERROR_COMPILATION`: the source did not compile; the log says why.
pub const HIPRTC_ERROR_COMPILATION: HiprtcResult = 6;

/// `hipError_t hipInit(unsigned int flags)`.
pub type HipInit = unsafe extern "C" fn(u32) -> HipError;
/// `hipError_t hipGetDeviceCount(int *count)`.
pub type HipGetDeviceCount = unsafe extern "C" fn(*mut c_int) -> HipError;
/// `hipError_t hipDriverGetVersion(int *driverVersion)`.
pub type HipDriverGetVersion = unsafe extern "C" fn(*mut c_int) -> HipError;
/// `const char *hipGetErrorString(hipError_t error)`: a static string.
pub type HipGetErrorString = unsafe extern "C" fn(HipError) -> *const c_char;

/// `hiprtcResult hiprtcCreateProgram(hiprtcProgram *prog, const char *src, const char *name,
/// int numHeaders, const char **headers, const char **includeNames)`.
pub type HiprtcCreateProgram = unsafe extern "C" fn(
    *mut HiprtcProgram,
    *const c_char,
    *const c_char,
    c_int,
    *const *const c_char,
    *const *const c_char,
) -> HiprtcResult;
/// `hiprtcResult hiprtcCompileProgram(hiprtcProgram prog, int numOptions, const char **options)`.
pub type HiprtcCompileProgram =
    unsafe extern "C" fn(HiprtcProgram, c_int, *const *const c_char) -> HiprtcResult;
/// `hiprtcResult hiprtcGetProgramLogSize(hiprtcProgram prog, size_t *logSizeRet)`.
pub type HiprtcGetProgramLogSize = unsafe extern "C" fn(HiprtcProgram, *mut usize) -> HiprtcResult;
/// `hiprtcResult hiprtcGetProgramLog(hiprtcProgram prog, char *log)`.
pub type HiprtcGetProgramLog = unsafe extern "C" fn(HiprtcProgram, *mut c_char) -> HiprtcResult;
/// `hiprtcResult hiprtcGetCodeSize(hiprtcProgram prog, size_t *codeSizeRet)`.
pub type HiprtcGetCodeSize = unsafe extern "C" fn(HiprtcProgram, *mut usize) -> HiprtcResult;
/// `hiprtcResult hiprtcGetCode(hiprtcProgram prog, char *code)`.
pub type HiprtcGetCode = unsafe extern "C" fn(HiprtcProgram, *mut c_char) -> HiprtcResult;
/// `hiprtcResult hiprtcDestroyProgram(hiprtcProgram *prog)`.
pub type HiprtcDestroyProgram = unsafe extern "C" fn(*mut HiprtcProgram) -> HiprtcResult;
/// `hiprtcResult hiprtcVersion(int *major, int *minor)`.
pub type HiprtcVersion = unsafe extern "C" fn(*mut c_int, *mut c_int) -> HiprtcResult;
/// `const char *hiprtcGetErrorString(hiprtcResult result)`: a static string.
pub type HiprtcGetErrorString = unsafe extern "C" fn(HiprtcResult) -> *const c_char;

/// The HIP runtime's file names, newest first.
pub const HIP_NAMES: &[&str] = &[
    "libamdhip64.so",
    "libamdhip64.so.7",
    "libamdhip64.so.6",
    "libamdhip64.so.5",
];

/// hiprtc's own library (ROCm ≥ 6.0), newest first; before 6.0 hiprtc is in [`HIP_NAMES`].
pub const HIPRTC_NAMES: &[&str] = &[
    "libhiprtc.so",
    "libhiprtc.so.7",
    "libhiprtc.so.6",
    "libhiprtc.so.5",
];

/// Opens the shared library at `path` (a bare name goes through the library search path).
pub fn open(path: &Path) -> Result<Library, String> {
    // SAFETY: opening a vendor library runs its initialisers; libamdhip64 and libhiprtc have
    // none that depend on the caller, and this crate never unloads a library while a symbol
    // copied from it is in use (each symbol is stored beside its `Library`).
    unsafe { Library::new(path) }.map_err(|e| e.to_string())
}

/// Copies the function pointer named `name` (without the NUL) out of `lib`.
///
/// # Safety
/// `T` must be the C prototype of that symbol (one of the types above), and the pointer must
/// only be called while `lib` is loaded.
pub unsafe fn symbol<T: Copy>(lib: &Library, name: &str) -> Result<T, String> {
    let c_name = format!("{name}\0");
    // SAFETY: forwarded to the caller (see # Safety).
    unsafe { lib.get::<T>(c_name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| format!("lacks {name}: {e}"))
}
