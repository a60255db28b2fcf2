//! The probes' calls into the vendor libraries: open the first candidate, resolve every entry
//! point a device transport needs with its prototype, and (NCCL/RCCL) ask for the version.
//! All FFI calls of the vendor probes are here.

use std::ffi::c_int;
use std::path::PathBuf;

use libloading::Library;

use super::sys::{self, *};

/// The NCCL/RCCL entry points of a device transport. Resolved to prove the library has them
/// with these names; only `get_version` is called (the transport, `crate::nccl`, loads its own).
#[allow(dead_code)]
struct NcclApi {
    get_version: NcclGetVersion,
    get_unique_id: NcclGetUniqueId,
    comm_init_rank: NcclCommInitRank,
    comm_destroy: NcclCommDestroy,
    comm_abort: NcclCommAbort,
    get_error_string: NcclGetErrorString,
    all_gather: NcclAllGather,
    broadcast: NcclBroadcast,
    send: NcclSend,
    recv: NcclRecv,
    group_start: NcclGroup,
    group_end: NcclGroup,
}

/// The HCCL entry points of a device transport (HCCL has no version call). Resolved, never
/// called (the transport, `crate::hccl`, loads its own).
#[allow(dead_code)]
struct HcclApi {
    get_root_info: HcclGetRootInfo,
    comm_init_root_info: HcclCommInitRootInfo,
    comm_destroy: HcclCommDestroy,
    all_gather: HcclAllGather,
    broadcast: HcclBroadcast,
    send: HcclSendRecv,
    recv: HcclSendRecv,
    all_to_all_v: HcclAlltoAllV,
    barrier: HcclBarrier,
}

/// Resolves every entry point of [`NcclApi`] in `lib`.
fn load_nccl(lib: &Library) -> Result<NcclApi, String> {
    // SAFETY: each prototype is copied from nccl.h (see `sys`); the pointers are used only
    // while `lib` is borrowed.
    unsafe {
        Ok(NcclApi {
            get_version: symbol(lib, "ncclGetVersion")?,
            get_unique_id: symbol(lib, "ncclGetUniqueId")?,
            comm_init_rank: symbol(lib, "ncclCommInitRank")?,
            comm_destroy: symbol(lib, "ncclCommDestroy")?,
            comm_abort: symbol(lib, "ncclCommAbort")?,
            get_error_string: symbol(lib, "ncclGetErrorString")?,
            all_gather: symbol(lib, "ncclAllGather")?,
            broadcast: symbol(lib, "ncclBroadcast")?,
            send: symbol(lib, "ncclSend")?,
            recv: symbol(lib, "ncclRecv")?,
            group_start: symbol(lib, "ncclGroupStart")?,
            group_end: symbol(lib, "ncclGroupEnd")?,
        })
    }
}

/// Resolves every entry point of [`HcclApi`] in `lib`.
fn load_hccl(lib: &Library) -> Result<HcclApi, String> {
    // SAFETY: each prototype is copied from hccl/hccl.h and hccl/hccl_comm.h (see `sys`);
    // nothing is called.
    unsafe {
        Ok(HcclApi {
            get_root_info: symbol(lib, "HcclGetRootInfo")?,
            comm_init_root_info: symbol(lib, "HcclCommInitRootInfo")?,
            comm_destroy: symbol(lib, "HcclCommDestroy")?,
            all_gather: symbol(lib, "HcclAllGather")?,
            broadcast: symbol(lib, "HcclBroadcast")?,
            send: symbol(lib, "HcclSend")?,
            recv: symbol(lib, "HcclRecv")?,
            all_to_all_v: symbol(lib, "HcclAlltoAllV")?,
            barrier: symbol(lib, "HcclBarrier")?,
        })
    }
}

/// Loads NCCL or RCCL (same API) from the first of `candidates` that opens, resolves its
/// entry points and returns `(version code, path)`.
pub fn nccl_version(candidates: &[PathBuf]) -> Result<(c_int, PathBuf), String> {
    let (lib, path) = sys::open_first(candidates)?;
    let api = load_nccl(&lib).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut version: c_int = 0;
    // SAFETY: `ncclGetVersion` only writes the int; it needs no device or communicator, and
    // `lib` is still loaded.
    let code = unsafe { (api.get_version)(&mut version) };
    if code != 0 {
        return Err(format!(
            "{}: ncclGetVersion failed with ncclResult_t {code}",
            path.display()
        ));
    }
    Ok((version, path))
}

/// Loads HCCL from the first of `candidates` that opens and resolves its entry points; the
/// path it was loaded from.
pub fn hccl_path(candidates: &[PathBuf]) -> Result<PathBuf, String> {
    let (lib, path) = sys::open_first(candidates)?;
    load_hccl(&lib).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
