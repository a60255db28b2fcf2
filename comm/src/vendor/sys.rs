//! Raw FFI of the vendors' collective libraries — NCCL (`nccl.h`), RCCL (the same API, built
//! for ROCm) and HCCL (`hccl/hccl.h`, `hccl/hccl_comm.h` of CANN) — opened at run time with
//! libloading: the C prototypes of the calls a device transport needs, and the library search.
//! The probe resolves every symbol and calls `ncclGetVersion`; the NCCL/RCCL transport
//! (`crate::nccl`) and the HCCL one (`crate::hccl`) call the rest. Prototypes copied from
//! NVIDIA/nccl `src/nccl.h.in` (the public header; RCCL's `rccl.h` declares the same) and from
//! CANN's public hccl repository (`inc/hccl/hccl.h`, `hccl_comm.h`, `hccl_types.h`). Nothing
//! has run on GPU or NPU hardware; the transports' tests run on stand-in libraries
//! (`comm/standin/`).

use std::ffi::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};

use libloading::Library;

/// `ncclResult_t` (nccl.h: an enum; 0 is `ncclSuccess`).
pub type NcclResult = c_int;
/// `ncclComm_t` (nccl.h: `typedef struct ncclComm* ncclComm_t`).
pub type NcclComm = *mut c_void;
/// `ncclDataType_t` (nccl.h: an enum; `ncclUint8` is 1).
pub type NcclDataType = c_int;
/// `cudaStream_t` / `hipStream_t`: an opaque pointer.
pub type Stream = *mut c_void;
/// `ncclSuccess` (nccl.h's `ncclResult_t`).
pub const NCCL_SUCCESS: NcclResult = 0;
/// `ncclInProgress` (nccl.h, 2.14 and later): an operation of a nonblocking communicator is
/// still running — not an error.
pub const NCCL_IN_PROGRESS: NcclResult = 7;
/// `ncclUint8` (nccl.h's `ncclDataType_t`: `ncclInt8 = 0, ncclChar = 0, ncclUint8 = 1`).
pub const NCCL_UINT8: NcclDataType = 1;
/// `NCCL_UNIQUE_ID_BYTES` (nccl.h).
pub const NCCL_UNIQUE_ID_BYTES: usize = 128;
/// `ncclUniqueId` (nccl.h: `typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; }`), passed
/// by value to `ncclCommInitRank`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NcclUniqueId {
    /// Opaque bytes from `ncclGetUniqueId`.
    pub internal: [c_char; NCCL_UNIQUE_ID_BYTES],
}

/// `ncclResult_t ncclGetVersion(int *version)`.
pub type NcclGetVersion = unsafe extern "C" fn(*mut c_int) -> NcclResult;
/// `ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId)`.
pub type NcclGetUniqueId = unsafe extern "C" fn(*mut NcclUniqueId) -> NcclResult;
/// `ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId,
/// int rank)`.
pub type NcclCommInitRank =
    unsafe extern "C" fn(*mut NcclComm, c_int, NcclUniqueId, c_int) -> NcclResult;
/// `ncclResult_t ncclCommDestroy(ncclComm_t comm)`.
pub type NcclCommDestroy = unsafe extern "C" fn(NcclComm) -> NcclResult;
/// `ncclResult_t ncclCommAbort(ncclComm_t comm)`.
pub type NcclCommAbort = unsafe extern "C" fn(NcclComm) -> NcclResult;
/// `ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError)`.
pub type NcclCommGetAsyncError = unsafe extern "C" fn(NcclComm, *mut NcclResult) -> NcclResult;
/// `const char *ncclGetErrorString(ncclResult_t result)`.
pub type NcclGetErrorString = unsafe extern "C" fn(NcclResult) -> *const c_char;
/// `ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
/// ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream)`.
pub type NcclAllGather = unsafe extern "C" fn(
    *const c_void,
    *mut c_void,
    usize,
    NcclDataType,
    NcclComm,
    Stream,
) -> NcclResult;
/// `ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
/// ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream)`.
pub type NcclBroadcast = unsafe extern "C" fn(
    *const c_void,
    *mut c_void,
    usize,
    NcclDataType,
    c_int,
    NcclComm,
    Stream,
) -> NcclResult;
/// `ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype,
/// int peer, ncclComm_t comm, cudaStream_t stream)`.
pub type NcclSend =
    unsafe extern "C" fn(*const c_void, usize, NcclDataType, c_int, NcclComm, Stream) -> NcclResult;
/// `ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer,
/// ncclComm_t comm, cudaStream_t stream)`.
pub type NcclRecv =
    unsafe extern "C" fn(*mut c_void, usize, NcclDataType, c_int, NcclComm, Stream) -> NcclResult;
/// `ncclResult_t ncclGroupStart(void)` and `ncclGroupEnd(void)`: all-to-all-v is a group of
/// sends and receives.
pub type NcclGroup = unsafe extern "C" fn() -> NcclResult;

/// `HcclResult` (hccl/hccl_types.h: an enum; 0 is `HCCL_SUCCESS`).
pub type HcclResult = c_int;
/// `HcclComm` (hccl/hccl_types.h: `typedef void *HcclComm`).
pub type HcclComm = *mut c_void;
/// `HcclDataType` (hccl/hccl_types.h: an enum).
pub type HcclDataType = c_int;
/// `HCCL_ROOT_INFO_BYTES` (hccl/hccl_types.h).
pub const HCCL_ROOT_INFO_BYTES: usize = 4108;
/// `HcclRootInfo` (hccl/hccl_types.h: `typedef struct { char internal[HCCL_ROOT_INFO_BYTES]; }`).
#[repr(C)]
pub struct HcclRootInfo {
    /// Opaque bytes from `HcclGetRootInfo`.
    pub internal: [c_char; HCCL_ROOT_INFO_BYTES],
}

/// `HcclResult HcclGetRootInfo(HcclRootInfo *rootInfo)` (hccl/hccl_comm.h).
pub type HcclGetRootInfo = unsafe extern "C" fn(*mut HcclRootInfo) -> HcclResult;
/// `HcclResult HcclCommInitRootInfo(uint32_t nRanks, const HcclRootInfo *rootInfo,
/// uint32_t rank, HcclComm *comm)` (hccl/hccl_comm.h).
pub type HcclCommInitRootInfo =
    unsafe extern "C" fn(u32, *const HcclRootInfo, u32, *mut HcclComm) -> HcclResult;
/// `HcclResult HcclCommDestroy(HcclComm comm)` (hccl/hccl_comm.h).
pub type HcclCommDestroy = unsafe extern "C" fn(HcclComm) -> HcclResult;
/// `HcclResult HcclAllGather(void *sendBuf, void *recvBuf, uint64_t sendCount,
/// HcclDataType dataType, HcclComm comm, aclrtStream stream)` (hccl/hccl.h).
pub type HcclAllGather = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    u64,
    HcclDataType,
    HcclComm,
    Stream,
) -> HcclResult;
/// `HcclResult HcclBroadcast(void *buf, uint64_t count, HcclDataType dataType, uint32_t root,
/// HcclComm comm, aclrtStream stream)` (hccl/hccl.h).
pub type HcclBroadcast =
    unsafe extern "C" fn(*mut c_void, u64, HcclDataType, u32, HcclComm, Stream) -> HcclResult;
/// `HcclResult HcclSend(void *sendBuf, uint64_t count, HcclDataType dataType,
/// uint32_t destRank, HcclComm comm, aclrtStream stream)` (hccl/hccl.h); `HcclRecv` has the
/// same shape (`recvBuf`, `srcRank`).
pub type HcclSendRecv =
    unsafe extern "C" fn(*mut c_void, u64, HcclDataType, u32, HcclComm, Stream) -> HcclResult;
/// `HcclResult HcclAlltoAllV(const void *sendBuf, const void *sendCounts, const void *sdispls,
/// HcclDataType sendType, const void *recvBuf, const void *recvCounts, const void *rdispls,
/// HcclDataType recvType, HcclComm comm, aclrtStream stream)` (hccl/hccl.h; counts and
/// displacements are uint64 arrays).
pub type HcclAlltoAllV = unsafe extern "C" fn(
    *const c_void,
    *const c_void,
    *const c_void,
    HcclDataType,
    *const c_void,
    *const c_void,
    *const c_void,
    HcclDataType,
    HcclComm,
    Stream,
) -> HcclResult;
/// `HcclResult HcclBarrier(HcclComm comm, aclrtStream stream)` (hccl/hccl_comm.h).
pub type HcclBarrier = unsafe extern "C" fn(HcclComm, Stream) -> HcclResult;
/// `HcclResult HcclGetCommAsyncError(HcclComm comm, HcclResult *asyncError)` (hccl/hccl.h of
/// CANN's public hccl repository, `inc/hccl/hccl.h`; absent from older CANN, so optional).
pub type HcclGetCommAsyncError = unsafe extern "C" fn(HcclComm, *mut HcclResult) -> HcclResult;
/// `const char *HcclGetErrorString(HcclResult code)` (hccl/hccl.h, same source; optional).
pub type HcclGetErrorString = unsafe extern "C" fn(HcclResult) -> *const c_char;
/// `HCCL_SUCCESS` (hccl/hccl_types.h's `HcclResult`).
pub const HCCL_SUCCESS: HcclResult = 0;
/// `HCCL_DATA_TYPE_INT8` (hccl/hccl_types.h's `HcclDataType`: the first member, 0): bytes.
pub const HCCL_DATA_TYPE_INT8: HcclDataType = 0;

/// `HcclResult`'s names (hccl/hccl_types.h), for a library without `HcclGetErrorString`.
pub fn hccl_result_name(code: HcclResult) -> &'static str {
    const NAMES: [&str; 25] = [
        "HCCL_SUCCESS",
        "HCCL_E_PARA (parameter error)",
        "HCCL_E_PTR (empty pointer)",
        "HCCL_E_MEMORY (memory error)",
        "HCCL_E_INTERNAL (internal error)",
        "HCCL_E_NOT_SUPPORT (not supported)",
        "HCCL_E_NOT_FOUND (not found)",
        "HCCL_E_UNAVAIL (resource unavailable)",
        "HCCL_E_SYSCALL (system call error)",
        "HCCL_E_TIMEOUT (timeout)",
        "HCCL_E_OPEN_FILE_FAILURE (open file failed)",
        "HCCL_E_TCP_CONNECT (TCP connect failed)",
        "HCCL_E_ROCE_CONNECT (RoCE connect failed)",
        "HCCL_E_TCP_TRANSFER (TCP transfer failed)",
        "HCCL_E_ROCE_TRANSFER (RoCE transfer failed)",
        "HCCL_E_RUNTIME (runtime call failed)",
        "HCCL_E_DRV (driver call failed)",
        "HCCL_E_PROFILING (profiling call failed)",
        "HCCL_E_CCE (CCE call failed)",
        "HCCL_E_NETWORK (network call failed)",
        "HCCL_E_AGAIN (try again)",
        "HCCL_E_REMOTE (error CQE)",
        "HCCL_E_SUSPENDING (communicator suspending)",
        "HCCL_E_OPRETRY_FAIL (retry constraint)",
        "HCCL_E_OOM (out of memory)",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknown HcclResult")
}

/// NCCL's candidates: the runtime soname, then the development link.
pub fn nccl_candidates() -> Vec<PathBuf> {
    vec!["libnccl.so.2".into(), "libnccl.so".into()]
}

/// RCCL's candidates: the loader's search path, then `$ROCM_PATH/lib` and `/opt/rocm/lib`.
pub fn rccl_candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = vec!["librccl.so.1".into()];
    let roots = std::env::var_os("ROCM_PATH")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/opt/rocm")]);
    out.extend(roots.map(|root| root.join("lib").join("librccl.so.1")));
    out.push("librccl.so".into());
    out.dedup();
    out
}

/// HCCL's candidates: `<home>/lib64/libhccl.so` for `$ASCEND_HOME_PATH`,
/// `$ASCEND_TOOLKIT_HOME` and the default toolkit, then the loader's search path.
pub fn hccl_candidates() -> Vec<PathBuf> {
    let homes = ["ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"]
        .iter()
        .filter_map(|v| std::env::var_os(v).filter(|s| !s.is_empty()))
        .map(PathBuf::from)
        .chain([PathBuf::from("/usr/local/Ascend/ascend-toolkit/latest")]);
    let mut out: Vec<PathBuf> = homes
        .map(|home| home.join("lib64").join("libhccl.so"))
        .collect();
    out.push("libhccl.so".into());
    out.dedup();
    out
}

/// Opens the shared library at `path` (a bare name goes through the loader's search path).
pub fn open(path: &Path) -> Result<Library, String> {
    // SAFETY: opening a vendor library runs its initialisers, which have no precondition on
    // the caller (NCCL, RCCL and HCCL set up devices only in their init calls); pointers
    // copied from it are used only while it is loaded (`result`).
    unsafe { Library::new(path) }.map_err(|e| e.to_string())
}

/// The first candidate that opens, with its path; the error lists each candidate and why it
/// did not open (`not found; tried PATH (WHY); …`).
pub fn open_first(candidates: &[PathBuf]) -> Result<(Library, PathBuf), String> {
    let mut tried = Vec::new();
    for candidate in candidates {
        match open(candidate) {
            Ok(library) => return Ok((library, candidate.clone())),
            Err(e) => tried.push(format!("{} ({e})", candidate.display())),
        }
    }
    Err(format!("not found; tried {}", tried.join("; ")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_first_names_every_candidate_it_tried() {
        let candidates = [
            PathBuf::from("/nonexistent/libone.so"),
            PathBuf::from("/nonexistent/libtwo.so"),
        ];
        let err = open_first(&candidates).err().unwrap();
        assert!(
            err.starts_with("not found; tried /nonexistent/libone.so ("),
            "{err}"
        );
        assert!(err.contains("); /nonexistent/libtwo.so ("), "{err}");
        let hccl = crate::hccl::HcclLibrary::open_first(&candidates)
            .err()
            .unwrap();
        assert!(
            hccl.starts_with("libhccl not found; tried /nonexistent/libone.so ("),
            "{hccl}"
        );
        let nccl = crate::nccl::NcclLibrary::open_first(&candidates)
            .err()
            .unwrap();
        assert_eq!(nccl, err);
    }
}
