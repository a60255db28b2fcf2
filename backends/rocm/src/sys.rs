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
/// `const char *hipGetErrorName(hipError_t hip_error)`: a static string (`hipErrorNoDevice`).
pub type HipGetErrorName = unsafe extern "C" fn(HipError) -> *const c_char;

/// `hipDeviceptr_t` (`void *`, driver_types.h): a device address.
pub type HipDeviceptr = *mut c_void;
/// `hipModule_t`: an opaque handle (`struct ihipModule_t *`).
pub type HipModule = *mut c_void;
/// `hipFunction_t`: an opaque handle (`struct ihipModuleSymbol_t *`).
pub type HipFunction = *mut c_void;
/// `hipStream_t`: an opaque handle; null is the default (null) stream.
pub type HipStream = *mut c_void;
/// `hipDevice_t`: a device ordinal (`typedef int hipDevice_t`).
pub type HipDevice = c_int;

/// `hipError_t hipSetDevice(int deviceId)`.
pub type HipSetDevice = unsafe extern "C" fn(c_int) -> HipError;
/// `hipError_t hipDeviceGet(hipDevice_t *device, int ordinal)`.
pub type HipDeviceGet = unsafe extern "C" fn(*mut HipDevice, c_int) -> HipError;
/// `hipError_t hipDeviceGetName(char *name, int len, hipDevice_t device)`.
pub type HipDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, HipDevice) -> HipError;
/// `hipError_t hipGetDeviceProperties(hipDeviceProp_t *prop, int deviceId)`, exported as
/// `hipGetDevicePropertiesR0600` (ROCm ≥ 6.0 layout) and `hipGetDeviceProperties` (the ROCm
/// 5.x layout). The struct is taken as untyped memory: its layout differs between the two.
pub type HipGetDeviceProperties = unsafe extern "C" fn(*mut c_void, c_int) -> HipError;
/// `hipError_t hipMalloc(void **ptr, size_t size)`.
pub type HipMalloc = unsafe extern "C" fn(*mut *mut c_void, usize) -> HipError;
/// `hipError_t hipFree(void *ptr)`: performs an implicit `hipDeviceSynchronize()`.
pub type HipFree = unsafe extern "C" fn(*mut c_void) -> HipError;
/// `hipError_t hipMemcpyHtoD(hipDeviceptr_t dst, void *src, size_t sizeBytes)`.
pub type HipMemcpyHtoD = unsafe extern "C" fn(HipDeviceptr, *mut c_void, usize) -> HipError;
/// `hipError_t hipMemcpyDtoH(void *dst, hipDeviceptr_t src, size_t sizeBytes)`.
pub type HipMemcpyDtoH = unsafe extern "C" fn(*mut c_void, HipDeviceptr, usize) -> HipError;
/// `hipError_t hipModuleLoadData(hipModule_t *module, const void *image)`.
pub type HipModuleLoadData = unsafe extern "C" fn(*mut HipModule, *const c_void) -> HipError;
/// `hipError_t hipModuleUnload(hipModule_t module)`.
pub type HipModuleUnload = unsafe extern "C" fn(HipModule) -> HipError;
/// `hipError_t hipModuleGetFunction(hipFunction_t *function, hipModule_t module,
/// const char *kname)`.
pub type HipModuleGetFunction =
    unsafe extern "C" fn(*mut HipFunction, HipModule, *const c_char) -> HipError;
/// `hipError_t hipModuleLaunchKernel(hipFunction_t f, unsigned int gridDimX,
/// unsigned int gridDimY, unsigned int gridDimZ, unsigned int blockDimX,
/// unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes,
/// hipStream_t stream, void **kernelParams, void **extra)`.
pub type HipModuleLaunchKernel = unsafe extern "C" fn(
    HipFunction,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    HipStream,
    *mut *mut c_void,
    *mut *mut c_void,
) -> HipError;
/// `hipError_t hipMemGetInfo(size_t *free, size_t *total)`: of the current device.
pub type HipMemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> HipError;
/// `hipError_t hipDeviceSynchronize(void)`.
pub type HipDeviceSynchronize = unsafe extern "C" fn() -> HipError;

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

/// The first of `names` that `lib` exports, as [`symbol`] copies it (for entry points that
/// ROCm 6 versions, such as `hipGetDevicePropertiesR0600` beside `hipGetDeviceProperties`).
///
/// # Safety
/// As for [`symbol`], for every name in `names`.
pub unsafe fn first_symbol<T: Copy>(lib: &Library, names: &[&str]) -> Result<T, String> {
    let mut errors = Vec::new();
    for name in names {
        // SAFETY: forwarded to the caller (see # Safety).
        match unsafe { symbol::<T>(lib, name) } {
            Ok(f) => return Ok(f),
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("; "))
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
