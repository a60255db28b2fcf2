//! Raw FFI of the device memory a staging needs: the CUDA driver API (`cuda.h`) and the HIP
//! runtime (`hip_runtime_api.h`), opened at run time with libloading. Prototypes only; the
//! calls are in `result`.

use std::ffi::{c_char, c_int, c_uint, c_void};

/// `CUresult` (cuda.h: an enum; 0 is `CUDA_SUCCESS`).
pub type CuResult = c_int;
/// `CUDA_ERROR_NOT_READY` (cuda.h): `cuStreamQuery` on a stream with unfinished work.
pub const CUDA_ERROR_NOT_READY: CuResult = 600;
/// `CUdevice` (cuda.h: `typedef int CUdevice`).
pub type CuDevice = c_int;
/// `CUcontext` (cuda.h: a pointer to an opaque struct).
pub type CuContext = *mut c_void;
/// `CUstream` (cuda.h: a pointer to an opaque struct).
pub type CuStream = *mut c_void;
/// `CUdeviceptr` (cuda.h: `unsigned long long` on 64-bit hosts).
pub type CuDevicePtr = u64;

/// `CUresult cuInit(unsigned int Flags)`.
pub type CuInit = unsafe extern "C" fn(c_uint) -> CuResult;
/// `CUresult cuDeviceGet(CUdevice *device, int ordinal)`.
pub type CuDeviceGet = unsafe extern "C" fn(*mut CuDevice, c_int) -> CuResult;
/// `CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)`.
pub type CuDevicePrimaryCtxRetain = unsafe extern "C" fn(*mut CuContext, CuDevice) -> CuResult;
/// `CUresult cuCtxSetCurrent(CUcontext ctx)`.
pub type CuCtxSetCurrent = unsafe extern "C" fn(CuContext) -> CuResult;
/// `CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)`.
pub type CuStreamCreate = unsafe extern "C" fn(*mut CuStream, c_uint) -> CuResult;
/// `CUresult cuStreamQuery(CUstream hStream)`.
pub type CuStreamQuery = unsafe extern "C" fn(CuStream) -> CuResult;
/// `CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)`.
pub type CuMemAlloc = unsafe extern "C" fn(*mut CuDevicePtr, usize) -> CuResult;
/// `CUresult cuMemFree_v2(CUdeviceptr dptr)`.
pub type CuMemFree = unsafe extern "C" fn(CuDevicePtr) -> CuResult;
/// `CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)`.
pub type CuMemcpyHtoD = unsafe extern "C" fn(CuDevicePtr, *const c_void, usize) -> CuResult;
/// `CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)`.
pub type CuMemcpyDtoH = unsafe extern "C" fn(*mut c_void, CuDevicePtr, usize) -> CuResult;
/// `CUresult cuGetErrorString(CUresult error, const char **pStr)`.
pub type CuGetErrorString = unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult;

/// The driver library: the runtime soname, then the development link.
pub const CUDA_NAMES: &[&str] = &["libcuda.so.1", "libcuda.so"];

/// `hipError_t` (hip_runtime_api.h: an enum; 0 is `hipSuccess`).
pub type HipError = c_int;
/// `hipErrorNotReady` (hip_runtime_api.h): `hipStreamQuery` on a busy stream.
pub const HIP_ERROR_NOT_READY: HipError = 600;
/// `hipStream_t` (a pointer to an opaque struct).
pub type HipStream = *mut c_void;
/// `hipMemcpyHostToDevice` of `hipMemcpyKind`.
pub const HIP_MEMCPY_HOST_TO_DEVICE: c_int = 1;
/// `hipMemcpyDeviceToHost` of `hipMemcpyKind`.
pub const HIP_MEMCPY_DEVICE_TO_HOST: c_int = 2;

/// `hipError_t hipSetDevice(int deviceId)`.
pub type HipSetDevice = unsafe extern "C" fn(c_int) -> HipError;
/// `hipError_t hipStreamCreate(hipStream_t *stream)`.
pub type HipStreamCreate = unsafe extern "C" fn(*mut HipStream) -> HipError;
/// `hipError_t hipStreamQuery(hipStream_t stream)`.
pub type HipStreamQuery = unsafe extern "C" fn(HipStream) -> HipError;
/// `hipError_t hipMalloc(void **ptr, size_t size)`.
pub type HipMalloc = unsafe extern "C" fn(*mut *mut c_void, usize) -> HipError;
/// `hipError_t hipFree(void *ptr)`.
pub type HipFree = unsafe extern "C" fn(*mut c_void) -> HipError;
/// `hipError_t hipMemcpy(void *dst, const void *src, size_t sizeBytes, hipMemcpyKind kind)`.
pub type HipMemcpy = unsafe extern "C" fn(*mut c_void, *const c_void, usize, c_int) -> HipError;
/// `const char *hipGetErrorString(hipError_t hipError)`.
pub type HipGetErrorString = unsafe extern "C" fn(HipError) -> *const c_char;

/// The HIP runtime, as backends/rocm searches it.
pub const HIP_NAMES: &[&str] = &[
    "libamdhip64.so",
    "libamdhip64.so.7",
    "libamdhip64.so.6",
    "libamdhip64.so.5",
];

/// `aclError` (acl/acl_base.h: `typedef int aclError`; 0 is `ACL_SUCCESS`).
pub type AclError = c_int;
/// `aclrtStream` (acl/acl_base.h: `typedef void *aclrtStream`).
pub type AclStream = *mut c_void;
/// `ACL_ERROR_RT_STREAM_SYNC_TIMEOUT` (acl/acl_base.h, 507046):
/// `aclrtSynchronizeStreamWithTimeout` returned before the stream finished.
pub const ACL_ERROR_RT_STREAM_SYNC_TIMEOUT: AclError = 507046;
/// `ACL_MEMCPY_HOST_TO_DEVICE` of `aclrtMemcpyKind` (acl/acl_rt.h).
pub const ACL_MEMCPY_HOST_TO_DEVICE: c_int = 1;
/// `ACL_MEMCPY_DEVICE_TO_HOST` of `aclrtMemcpyKind` (acl/acl_rt.h).
pub const ACL_MEMCPY_DEVICE_TO_HOST: c_int = 2;
/// `ACL_MEM_MALLOC_HUGE_FIRST` of `aclrtMemMallocPolicy` (acl/acl_rt.h).
pub const ACL_MEM_MALLOC_HUGE_FIRST: c_int = 0;
/// How long one poll of an ACL stream blocks, in milliseconds: short, so the communicator's
/// deadline and asynchronous-error checks still run between polls.
pub const ACL_POLL_MS: i32 = 1;

/// `ACL_ERROR_REPEAT_INITIALIZE` (acl/acl_base.h, 100002): `aclInit` already ran in this
/// process (the Ascend backend's) — not a failure.
pub const ACL_ERROR_REPEAT_INITIALIZE: AclError = 100002;
/// `aclError aclInit(const char *configPath)` (acl/acl.h); null: no configuration file.
pub type AclInit = unsafe extern "C" fn(*const c_char) -> AclError;
/// `aclError aclrtSetDevice(int32_t deviceId)` (acl/acl_rt.h).
pub type AclrtSetDevice = unsafe extern "C" fn(i32) -> AclError;
/// `aclError aclrtCreateStream(aclrtStream *stream)` (acl/acl_rt.h).
pub type AclrtCreateStream = unsafe extern "C" fn(*mut AclStream) -> AclError;
/// `aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout)`
/// (acl/acl_rt.h; milliseconds, -1 waits forever).
pub type AclrtSynchronizeStreamWithTimeout = unsafe extern "C" fn(AclStream, i32) -> AclError;
/// `aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy)`
/// (acl/acl_rt.h).
pub type AclrtMalloc = unsafe extern "C" fn(*mut *mut c_void, usize, c_int) -> AclError;
/// `aclError aclrtFree(void *devPtr)` (acl/acl_rt.h).
pub type AclrtFree = unsafe extern "C" fn(*mut c_void) -> AclError;
/// `aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count,
/// aclrtMemcpyKind kind)` (acl/acl_rt.h): synchronous.
pub type AclrtMemcpy =
    unsafe extern "C" fn(*mut c_void, usize, *const c_void, usize, c_int) -> AclError;

/// libascendcl's candidates: `<home>/lib64/libascendcl.so` for `$ASCEND_HOME_PATH`,
/// `$ASCEND_TOOLKIT_HOME` and the default toolkit, then the loader's search path (as
/// `vendor::sys::hccl_candidates` searches libhccl).
pub fn ascendcl_candidates() -> Vec<String> {
    let homes = ["ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .chain(["/usr/local/Ascend/ascend-toolkit/latest".to_string()]);
    let mut out: Vec<String> = homes
        .map(|home| format!("{home}/lib64/libascendcl.so"))
        .collect();
    out.push("libascendcl.so".into());
    out.dedup();
    out
}
