//! Raw FFI of CANN's ACL runtime (libascendcl) and of its runtime compiler aclrtc, opened at
//! run time with libloading: the C types and the function pointer types, each copied from the
//! public header named beside it, and the library search. Nothing here calls a vendor
//! function; `result` does, one safe function per call. Signatures this crate is not sure
//! of are listed in backends/ascend/README.md.

use std::ffi::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};

use libloading::Library;

/// `aclError` (acl/acl_base.h: `typedef int aclError`): 0 is `ACL_SUCCESS`.
pub type AclError = c_int;
/// `aclrtStream` (acl/acl_base.h: `typedef void *aclrtStream`).
pub type AclStream = *mut c_void;
/// `aclrtBinHandle` (acl/acl_rt.h: `typedef void *aclrtBinHandle`).
pub type AclBinHandle = *mut c_void;
/// `aclrtFuncHandle` (acl/acl_rt.h: `typedef void *aclrtFuncHandle`).
pub type AclFuncHandle = *mut c_void;
/// `aclrtArgsHandle` (acl/acl_rt.h: `typedef void *aclrtArgsHandle`).
pub type AclArgsHandle = *mut c_void;
/// `aclrtParamHandle` (acl/acl_rt.h: `typedef void *aclrtParamHandle`).
pub type AclParamHandle = *mut c_void;
/// `aclrtcProg` (acl/acl_rt_compile.h: `typedef void *aclrtcProg`).
pub type AclrtcProg = *mut c_void;

/// `aclrtMemcpyKind` (acl/acl_rt.h): `ACL_MEMCPY_HOST_TO_DEVICE`.
pub const ACL_MEMCPY_HOST_TO_DEVICE: c_int = 1;
/// `aclrtMemcpyKind` (acl/acl_rt.h): `ACL_MEMCPY_DEVICE_TO_HOST`.
pub const ACL_MEMCPY_DEVICE_TO_HOST: c_int = 2;
/// `aclrtMemMallocPolicy` (acl/acl_rt.h): `ACL_MEM_MALLOC_HUGE_FIRST`.
pub const ACL_MEM_MALLOC_HUGE_FIRST: c_int = 0;
/// `aclrtMemAttr` (acl/acl_rt.h): `ACL_HBM_MEM`, the device's HBM.
pub const ACL_HBM_MEM: c_int = 1;

/// `aclError aclInit(const char *configPath)` (acl/acl.h); null: no configuration file.
pub type AclInit = unsafe extern "C" fn(*const c_char) -> AclError;
/// `const char *aclGetRecentErrMsg()` (acl/acl_base.h): this thread's last error text, or
/// null.
pub type AclGetRecentErrMsg = unsafe extern "C" fn() -> *const c_char;
/// `aclError aclrtGetVersion(int32_t *majorVersion, int32_t *minorVersion,
/// int32_t *patchVersion)` (acl/acl.h).
pub type AclrtGetVersion = unsafe extern "C" fn(*mut i32, *mut i32, *mut i32) -> AclError;
/// `aclError aclrtGetDeviceCount(uint32_t *count)` (acl/acl_rt.h).
pub type AclrtGetDeviceCount = unsafe extern "C" fn(*mut u32) -> AclError;
/// `aclError aclrtSetDevice(int32_t deviceId)` (acl/acl_rt.h).
pub type AclrtSetDevice = unsafe extern "C" fn(i32) -> AclError;
/// `const char *aclrtGetSocName()` (acl/acl_rt.h): `Ascend910B3`, …; null on failure.
pub type AclrtGetSocName = unsafe extern "C" fn() -> *const c_char;
/// `aclError aclrtGetMemInfo(aclrtMemAttr attr, size_t *free, size_t *total)` (acl/acl_rt.h).
pub type AclrtGetMemInfo = unsafe extern "C" fn(c_int, *mut usize, *mut usize) -> AclError;
/// `aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy)`
/// (acl/acl_rt.h).
pub type AclrtMalloc = unsafe extern "C" fn(*mut *mut c_void, usize, c_int) -> AclError;
/// `aclError aclrtFree(void *devPtr)` (acl/acl_rt.h).
pub type AclrtFree = unsafe extern "C" fn(*mut c_void) -> AclError;
/// `aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count,
/// aclrtMemcpyKind kind)` (acl/acl_rt.h): synchronous.
pub type AclrtMemcpy =
    unsafe extern "C" fn(*mut c_void, usize, *const c_void, usize, c_int) -> AclError;
/// `aclError aclrtCreateStream(aclrtStream *stream)` (acl/acl_rt.h).
pub type AclrtCreateStream = unsafe extern "C" fn(*mut AclStream) -> AclError;
/// `aclError aclrtSynchronizeStream(aclrtStream stream)` (acl/acl_rt.h).
pub type AclrtSynchronizeStream = unsafe extern "C" fn(AclStream) -> AclError;
/// `aclError aclrtDestroyStream(aclrtStream stream)` (acl/acl_rt.h).
pub type AclrtDestroyStream = unsafe extern "C" fn(AclStream) -> AclError;
/// `aclError aclrtBinaryLoadFromData(const void *data, size_t length,
/// const aclrtBinaryLoadOptions *options, aclrtBinHandle *binHandle)` (acl/acl_rt.h);
/// options are passed as null (no options).
pub type AclrtBinaryLoadFromData =
    unsafe extern "C" fn(*const c_void, usize, *const c_void, *mut AclBinHandle) -> AclError;
/// `aclError aclrtBinaryGetFunction(const aclrtBinHandle binHandle, const char *kernelName,
/// aclrtFuncHandle *funcHandle)` (acl/acl_rt.h).
pub type AclrtBinaryGetFunction =
    unsafe extern "C" fn(AclBinHandle, *const c_char, *mut AclFuncHandle) -> AclError;
/// `aclError aclrtBinaryUnLoad(aclrtBinHandle binHandle)` (acl/acl_rt.h).
pub type AclrtBinaryUnLoad = unsafe extern "C" fn(AclBinHandle) -> AclError;
/// `aclError aclrtKernelArgsInit(aclrtFuncHandle funcHandle, aclrtArgsHandle *argsHandle)`
/// (acl/acl_rt.h).
pub type AclrtKernelArgsInit = unsafe extern "C" fn(AclFuncHandle, *mut AclArgsHandle) -> AclError;
/// `aclError aclrtKernelArgsAppend(aclrtArgsHandle argsHandle, void *param, size_t paramSize,
/// aclrtParamHandle *paramHandle)` (acl/acl_rt.h): copies the value.
pub type AclrtKernelArgsAppend =
    unsafe extern "C" fn(AclArgsHandle, *mut c_void, usize, *mut AclParamHandle) -> AclError;
/// `aclError aclrtKernelArgsFinalize(aclrtArgsHandle argsHandle)` (acl/acl_rt.h).
pub type AclrtKernelArgsFinalize = unsafe extern "C" fn(AclArgsHandle) -> AclError;
/// `aclError aclrtLaunchKernelWithConfig(aclrtFuncHandle funcHandle, uint32_t blockDim,
/// aclrtStream stream, aclrtLaunchKernelCfg *cfg, aclrtArgsHandle argsHandle, void *reserve)`
/// (acl/acl_rt.h); cfg and reserve are null.
pub type AclrtLaunchKernelWithConfig = unsafe extern "C" fn(
    AclFuncHandle,
    u32,
    AclStream,
    *mut c_void,
    AclArgsHandle,
    *mut c_void,
) -> AclError;

/// `aclError aclrtcCreateProg(aclrtcProg *prog, const char *src, const char *name,
/// int numHeaders, const char **headers, const char **includeNames)` (acl/acl_rt_compile.h).
pub type AclrtcCreateProg = unsafe extern "C" fn(
    *mut AclrtcProg,
    *const c_char,
    *const c_char,
    c_int,
    *const *const c_char,
    *const *const c_char,
) -> AclError;
/// `aclError aclrtcCompileProg(aclrtcProg prog, int numOptions, const char **options)`
/// (acl/acl_rt_compile.h).
pub type AclrtcCompileProg =
    unsafe extern "C" fn(AclrtcProg, c_int, *const *const c_char) -> AclError;
/// `aclError aclrtcGetBinDataSize(aclrtcProg prog, size_t *binDataSizeRet)`
/// (acl/acl_rt_compile.h).
pub type AclrtcGetBinDataSize = unsafe extern "C" fn(AclrtcProg, *mut usize) -> AclError;
/// `aclError aclrtcGetBinData(aclrtcProg prog, char *binData)` (acl/acl_rt_compile.h).
pub type AclrtcGetBinData = unsafe extern "C" fn(AclrtcProg, *mut c_char) -> AclError;
/// `aclError aclrtcGetCompileLogSize(aclrtcProg prog, size_t *logSize)`
/// (acl/acl_rt_compile.h).
pub type AclrtcGetCompileLogSize = unsafe extern "C" fn(AclrtcProg, *mut usize) -> AclError;
/// `aclError aclrtcGetCompileLog(aclrtcProg prog, char *log)` (acl/acl_rt_compile.h).
pub type AclrtcGetCompileLog = unsafe extern "C" fn(AclrtcProg, *mut c_char) -> AclError;
/// `aclError aclrtcDestroyProg(aclrtcProg *prog)` (acl/acl_rt_compile.h).
pub type AclrtcDestroyProg = unsafe extern "C" fn(*mut AclrtcProg) -> AclError;

/// The ACL runtime's file name.
pub const ACL_LIBRARY: &str = "libascendcl.so";
/// aclrtc's own library, searched for the `aclrtc*` symbols when libascendcl lacks them.
pub const ACLRTC_LIBRARY: &str = "libacl_rtc.so";
/// Environment variables naming a CANN installation, in search order.
pub const HOME_ENVS: [&str; 2] = ["ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"];
/// The toolkit's default installation.
pub const DEFAULT_HOME: &str = "/usr/local/Ascend/ascend-toolkit/latest";

/// Where `file` is looked for, in order: `<home>/lib64/<file>` for each set home variable,
/// then the default toolkit, then `None` for the normal loader path.
pub fn search_path(file: &str) -> Vec<Option<PathBuf>> {
    let homes = HOME_ENVS
        .iter()
        .filter_map(|v| std::env::var_os(v).filter(|s| !s.is_empty()))
        .map(PathBuf::from)
        .chain([PathBuf::from(DEFAULT_HOME)]);
    let mut out: Vec<Option<PathBuf>> = homes
        .map(|home| Some(home.join("lib64").join(file)))
        .collect();
    out.dedup();
    out.push(None);
    out
}

/// Opens the shared library at `path` (a bare name goes through the loader's search path).
pub fn open(path: &Path) -> Result<Library, String> {
    // SAFETY: opening a library runs its initialisers; libascendcl's have no precondition on
    // the caller, and every symbol copied from a library is stored beside it (`result::Acl`),
    // so the library outlives every pointer into it.
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
