//! One safe function per HCCL call: each checks the byte ranges against the
//! [`DeviceBuffer`]s it is given and turns an `HcclResult` into an error with
//! `HcclGetErrorString`'s text (or hccl_types.h's name of the code when the library lacks it).
//! All HCCL calls of the transport are here. Prototypes: `vendor::sys`, from CANN's public
//! `inc/hccl/hccl.h` and `inc/hccl/hccl_types.h`.

use std::ffi::{c_void, CStr};
use std::path::{Path, PathBuf};

use libloading::Library;

use crate::staging::{DeviceBuffer, DeviceStaging};
use crate::vendor::sys::*;

/// The entry points the transport calls.
struct Api {
    get_root_info: HcclGetRootInfo,
    comm_init_root_info: HcclCommInitRootInfo,
    comm_destroy: HcclCommDestroy,
    all_gather: HcclAllGather,
    broadcast: HcclBroadcast,
    all_to_all_v: HcclAlltoAllV,
    barrier: HcclBarrier,
    /// Absent before CANN exported it: failures then show only as the deadline.
    get_comm_async_error: Option<HcclGetCommAsyncError>,
    /// Absent in older CANN: codes are then named from hccl_types.h.
    get_error_string: Option<HcclGetErrorString>,
}

/// An initialised communicator handle (`HcclComm`).
pub struct CommHandle(HcclComm);

// SAFETY: an `HcclComm` may be used from any thread, one call at a time; the transport
// serialises its calls behind a lock.
unsafe impl Send for CommHandle {}

/// HCCL, loaded.
pub struct HcclLibrary {
    api: Api,
    /// Where it was loaded from.
    pub path: PathBuf,
    _library: Library,
}

impl HcclLibrary {
    /// Loads the first of `candidates` that opens and resolves every required entry point;
    /// the error lists each candidate tried, or names the missing symbol.
    pub fn open_first(candidates: &[PathBuf]) -> Result<HcclLibrary, String> {
        let (library, path) = open_first(candidates).map_err(|e| format!("libhccl {e}"))?;
        HcclLibrary::from_library(library, &path)
    }

    fn from_library(library: Library, path: &Path) -> Result<HcclLibrary, String> {
        let named = |e: String| format!("{}: {e}", path.display());
        // SAFETY: each prototype is hccl.h's / hccl_types.h's (see `vendor::sys`); the
        // pointers are stored beside the library, which outlives them.
        let api = unsafe {
            Api {
                get_root_info: symbol(&library, "HcclGetRootInfo").map_err(named)?,
                comm_init_root_info: symbol(&library, "HcclCommInitRootInfo").map_err(named)?,
                comm_destroy: symbol(&library, "HcclCommDestroy").map_err(named)?,
                all_gather: symbol(&library, "HcclAllGather").map_err(named)?,
                broadcast: symbol(&library, "HcclBroadcast").map_err(named)?,
                all_to_all_v: symbol(&library, "HcclAlltoAllV").map_err(named)?,
                barrier: symbol(&library, "HcclBarrier").map_err(named)?,
                get_comm_async_error: symbol(&library, "HcclGetCommAsyncError").ok(),
                get_error_string: symbol(&library, "HcclGetErrorString").ok(),
            }
        };
        Ok(HcclLibrary {
            api,
            path: path.to_path_buf(),
            _library: library,
        })
    }

    /// Whether asynchronous errors can be polled (`HcclGetCommAsyncError` is exported).
    pub fn has_async_error(&self) -> bool {
        self.api.get_comm_async_error.is_some()
    }

    /// The library's text for `code`, else hccl_types.h's name of it.
    pub fn error_text(&self, code: HcclResult) -> String {
        if let Some(get_error_string) = self.api.get_error_string {
            // SAFETY: returns a static NUL-terminated string (or null) for any code.
            let text = unsafe { get_error_string(code) };
            if !text.is_null() {
                // SAFETY: non-null: the library's static string.
                let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
                if !text.is_empty() {
                    return text.into_owned();
                }
            }
        }
        hccl_result_name(code).to_string()
    }

    fn check(&self, call: &str, code: HcclResult) -> Result<(), String> {
        if code == HCCL_SUCCESS {
            return Ok(());
        }
        Err(format!(
            "{call} failed with HcclResult {code}: {}",
            self.error_text(code)
        ))
    }

    /// `HcclGetRootInfo` (rank 0): the bytes every rank passes to
    /// [`init_root_info`](Self::init_root_info).
    pub fn root_info(&self) -> Result<Box<[u8; HCCL_ROOT_INFO_BYTES]>, String> {
        let mut info = Box::new(HcclRootInfo {
            internal: [0; HCCL_ROOT_INFO_BYTES],
        });
        // SAFETY: a live out-struct of hccl_types.h's layout.
        self.check("HcclGetRootInfo", unsafe {
            (self.api.get_root_info)(&mut *info)
        })?;
        Ok(Box::new(info.internal.map(|c| c as u8)))
    }

    /// `HcclCommInitRootInfo`: blocks until all `size` ranks joined with the same root info.
    pub fn init_root_info(
        &self,
        size: u32,
        info: &[u8; HCCL_ROOT_INFO_BYTES],
        rank: u32,
    ) -> Result<CommHandle, String> {
        let info = Box::new(HcclRootInfo {
            internal: info.map(|b| b as std::ffi::c_char),
        });
        let mut comm: HcclComm = std::ptr::null_mut();
        // SAFETY: a live root info and out-pointer.
        self.check("HcclCommInitRootInfo", unsafe {
            (self.api.comm_init_root_info)(size, &*info, rank, &mut comm)
        })?;
        Ok(CommHandle(comm))
    }

    /// `HcclGetCommAsyncError`: the communicator's pending error (`HCCL_SUCCESS` when none);
    /// always `HCCL_SUCCESS` when the library does not export it.
    pub fn async_error(&self, comm: &CommHandle) -> Result<HcclResult, String> {
        let Some(get) = self.api.get_comm_async_error else {
            return Ok(HCCL_SUCCESS);
        };
        let mut state: HcclResult = HCCL_SUCCESS;
        // SAFETY: a live communicator and out-int.
        self.check("HcclGetCommAsyncError", unsafe { get(comm.0, &mut state) })?;
        Ok(state)
    }

    /// `HcclCommDestroy`: frees the communicator once its work finished.
    pub fn destroy(&self, comm: CommHandle) -> Result<(), String> {
        // SAFETY: consumes the handle: it is not used again.
        self.check("HcclCommDestroy", unsafe {
            (self.api.comm_destroy)(comm.0)
        })
    }

    /// `HcclAllGather` of `count` bytes per rank from `send` into `recv` (`size` × `count`
    /// bytes), enqueued on `staging`'s stream.
    pub fn all_gather(
        &self,
        comm: &CommHandle,
        send: &DeviceBuffer,
        recv: &DeviceBuffer,
        count: usize,
        size: usize,
        staging: &dyn DeviceStaging,
    ) -> Result<(), String> {
        let stream = staging.stream();
        let send = send.address_at(0, count).map_err(|e| e.to_string())?;
        let total = count.checked_mul(size).ok_or("all-gather size overflows")?;
        let recv = recv.address_at(0, total).map_err(|e| e.to_string())?;
        // SAFETY: both ranges were checked against live device buffers, which the caller
        // keeps (or leaks) until the stream has finished.
        let code = unsafe {
            (self.api.all_gather)(
                send as *mut c_void,
                recv as *mut c_void,
                count as u64,
                HCCL_DATA_TYPE_INT8,
                comm.0,
                stream,
            )
        };
        self.check("HcclAllGather", code)
    }

    /// `HcclBroadcast` of the first `count` bytes of `buf` from `root`, in place.
    pub fn broadcast(
        &self,
        comm: &CommHandle,
        buf: &DeviceBuffer,
        count: usize,
        root: u32,
        staging: &dyn DeviceStaging,
    ) -> Result<(), String> {
        let stream = staging.stream();
        let address = buf.address_at(0, count).map_err(|e| e.to_string())?;
        // SAFETY: as in `all_gather`.
        let code = unsafe {
            (self.api.broadcast)(
                address as *mut c_void,
                count as u64,
                HCCL_DATA_TYPE_INT8,
                root,
                comm.0,
                stream,
            )
        };
        self.check("HcclBroadcast", code)
    }

    /// `HcclAlltoAllV` of bytes: `send_counts[q]` bytes of `send` at `send_offsets[q]` to
    /// rank `q`, `recv_counts[r]` bytes from rank `r` into `recv` at `recv_offsets[r]`.
    #[allow(clippy::too_many_arguments)]
    pub fn all_to_all_v(
        &self,
        comm: &CommHandle,
        send: &DeviceBuffer,
        send_counts: &[usize],
        send_offsets: &[usize],
        recv: &DeviceBuffer,
        recv_counts: &[usize],
        recv_offsets: &[usize],
        staging: &dyn DeviceStaging,
    ) -> Result<(), String> {
        let check_parts = |buf: &DeviceBuffer, counts: &[usize], offsets: &[usize]| {
            counts
                .iter()
                .zip(offsets)
                .try_for_each(|(&n, &at)| buf.address_at(at, n).map(|_| ()))
                .map_err(|e| e.to_string())
        };
        check_parts(send, send_counts, send_offsets)?;
        check_parts(recv, recv_counts, recv_offsets)?;
        // hccl.h: the counts and displacements are uint64 arrays, in elements of the type.
        let as_u64 = |v: &[usize]| v.iter().map(|&x| x as u64).collect::<Vec<u64>>();
        let (sc, sd) = (as_u64(send_counts), as_u64(send_offsets));
        let (rc, rd) = (as_u64(recv_counts), as_u64(recv_offsets));
        let stream = staging.stream();
        // SAFETY: every part was checked against the live device buffers, which the caller
        // keeps (or leaks) until the stream has finished; the four arrays live across the
        // call (HCCL reads them while enqueuing).
        let code = unsafe {
            (self.api.all_to_all_v)(
                send.address() as *const c_void,
                sc.as_ptr().cast(),
                sd.as_ptr().cast(),
                HCCL_DATA_TYPE_INT8,
                recv.address() as *const c_void,
                rc.as_ptr().cast(),
                rd.as_ptr().cast(),
                HCCL_DATA_TYPE_INT8,
                comm.0,
                stream,
            )
        };
        self.check("HcclAlltoAllV", code)
    }

    /// `HcclBarrier` on `staging`'s stream.
    pub fn barrier(&self, comm: &CommHandle, staging: &dyn DeviceStaging) -> Result<(), String> {
        // SAFETY: a live communicator; no buffer.
        self.check("HcclBarrier", unsafe {
            (self.api.barrier)(comm.0, staging.stream())
        })
    }
}
