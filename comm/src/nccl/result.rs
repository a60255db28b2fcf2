//! One safe function per NCCL call (the same calls serve RCCL): each checks the byte ranges
//! against the [`DeviceBuffer`]s it is given and turns an `ncclResult_t` into a
//! [`CallError`] with `ncclGetErrorString`'s text. All NCCL calls of the transport are here.

use std::ffi::{c_int, c_void, CStr};
use std::path::{Path, PathBuf};

use libloading::Library;

use crate::staging::{DeviceBuffer, DeviceStaging};
use crate::vendor::sys::*;

/// A failed NCCL call: which, and the library's text for its code.
#[derive(Debug, Clone)]
pub struct CallError {
    /// The entry point (`ncclAllGather`).
    pub call: &'static str,
    /// The `ncclResult_t`.
    pub code: NcclResult,
    /// `ncclGetErrorString`'s text.
    pub text: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed with ncclResult_t {}: {}",
            self.call, self.code, self.text
        )
    }
}

/// The entry points the transport calls.
struct Api {
    get_version: NcclGetVersion,
    get_unique_id: NcclGetUniqueId,
    comm_init_rank: NcclCommInitRank,
    comm_destroy: NcclCommDestroy,
    comm_abort: NcclCommAbort,
    comm_get_async_error: NcclCommGetAsyncError,
    get_error_string: NcclGetErrorString,
    all_gather: NcclAllGather,
    broadcast: NcclBroadcast,
    send: NcclSend,
    recv: NcclRecv,
    group_start: NcclGroup,
    group_end: NcclGroup,
}

/// An initialised communicator handle (`ncclComm_t`).
pub struct CommHandle(NcclComm);

// SAFETY: an `ncclComm_t` may be used from any thread, one call at a time; the transport
// serialises its calls behind a lock.
unsafe impl Send for CommHandle {}

/// NCCL or RCCL, loaded.
pub struct NcclLibrary {
    api: Api,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// `ncclGetVersion`'s code.
    pub version: c_int,
    _library: Library,
}

impl NcclLibrary {
    /// Loads the first of `candidates` that opens and resolves every entry point; the error
    /// lists each candidate tried, or names the missing symbol.
    pub fn open_first(candidates: &[PathBuf]) -> Result<NcclLibrary, String> {
        let (library, path) = open_first(candidates)?;
        NcclLibrary::from_library(library, &path)
    }

    fn from_library(library: Library, path: &Path) -> Result<NcclLibrary, String> {
        let named = |e: String| format!("{}: {e}", path.display());
        // SAFETY: each prototype is nccl.h's (see `vendor::sys`); the pointers are stored
        // beside the library, which outlives them.
        let api = unsafe {
            Api {
                get_version: symbol(&library, "ncclGetVersion").map_err(named)?,
                get_unique_id: symbol(&library, "ncclGetUniqueId").map_err(named)?,
                comm_init_rank: symbol(&library, "ncclCommInitRank").map_err(named)?,
                comm_destroy: symbol(&library, "ncclCommDestroy").map_err(named)?,
                comm_abort: symbol(&library, "ncclCommAbort").map_err(named)?,
                comm_get_async_error: symbol(&library, "ncclCommGetAsyncError").map_err(named)?,
                get_error_string: symbol(&library, "ncclGetErrorString").map_err(named)?,
                all_gather: symbol(&library, "ncclAllGather").map_err(named)?,
                broadcast: symbol(&library, "ncclBroadcast").map_err(named)?,
                send: symbol(&library, "ncclSend").map_err(named)?,
                recv: symbol(&library, "ncclRecv").map_err(named)?,
                group_start: symbol(&library, "ncclGroupStart").map_err(named)?,
                group_end: symbol(&library, "ncclGroupEnd").map_err(named)?,
            }
        };
        let mut version: c_int = 0;
        // SAFETY: writes the int only.
        let code = unsafe { (api.get_version)(&mut version) };
        if code != NCCL_SUCCESS {
            return Err(named(format!("ncclGetVersion returned {code}")));
        }
        Ok(NcclLibrary {
            api,
            path: path.to_path_buf(),
            version,
            _library: library,
        })
    }

    /// `ncclGetErrorString`'s text for `code`.
    pub fn error_text(&self, code: NcclResult) -> String {
        // SAFETY: returns a static NUL-terminated string (or null) for any code.
        let text = unsafe { (self.api.get_error_string)(code) };
        if text.is_null() {
            return "unknown error".into();
        }
        // SAFETY: non-null: the library's static string.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }

    fn check(&self, call: &'static str, code: NcclResult) -> Result<(), CallError> {
        if code == NCCL_SUCCESS {
            return Ok(());
        }
        Err(CallError {
            call,
            code,
            text: self.error_text(code),
        })
    }

    /// `ncclGetUniqueId`: the bytes every rank passes to [`init_rank`](Self::init_rank).
    pub fn unique_id(&self) -> Result<[u8; NCCL_UNIQUE_ID_BYTES], CallError> {
        let mut id = NcclUniqueId {
            internal: [0; NCCL_UNIQUE_ID_BYTES],
        };
        // SAFETY: a live out-struct of nccl.h's layout.
        self.check("ncclGetUniqueId", unsafe {
            (self.api.get_unique_id)(&mut id)
        })?;
        Ok(id.internal.map(|c| c as u8))
    }

    /// `ncclCommInitRank`: blocks until all `size` ranks joined with the same `id`.
    pub fn init_rank(
        &self,
        size: c_int,
        id: &[u8; NCCL_UNIQUE_ID_BYTES],
        rank: c_int,
    ) -> Result<CommHandle, CallError> {
        let id = NcclUniqueId {
            internal: id.map(|b| b as std::ffi::c_char),
        };
        let mut comm: NcclComm = std::ptr::null_mut();
        // SAFETY: a live out-pointer; the id is passed by value as nccl.h declares.
        self.check("ncclCommInitRank", unsafe {
            (self.api.comm_init_rank)(&mut comm, size, id, rank)
        })?;
        Ok(CommHandle(comm))
    }

    /// `ncclCommGetAsyncError`: the communicator's pending error (`ncclSuccess` when none,
    /// `ncclInProgress` while a nonblocking call runs).
    pub fn async_error(&self, comm: &CommHandle) -> Result<NcclResult, CallError> {
        let mut state: NcclResult = NCCL_SUCCESS;
        // SAFETY: a live communicator and out-int.
        self.check("ncclCommGetAsyncError", unsafe {
            (self.api.comm_get_async_error)(comm.0, &mut state)
        })?;
        Ok(state)
    }

    /// `ncclCommAbort`: stops the communicator's pending work and frees it.
    pub fn abort(&self, comm: CommHandle) -> Result<(), CallError> {
        // SAFETY: consumes the handle: it is not used again.
        self.check("ncclCommAbort", unsafe { (self.api.comm_abort)(comm.0) })
    }

    /// `ncclCommDestroy`: frees the communicator once its work finished.
    pub fn destroy(&self, comm: CommHandle) -> Result<(), CallError> {
        // SAFETY: consumes the handle: it is not used again.
        self.check("ncclCommDestroy", unsafe {
            (self.api.comm_destroy)(comm.0)
        })
    }

    /// `ncclAllGather` of `count` bytes per rank from `send` into `recv` (`size` × `count`
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
                send as *const c_void,
                recv as *mut c_void,
                count,
                NCCL_UINT8,
                comm.0,
                stream,
            )
        };
        self.check("ncclAllGather", code).map_err(|e| e.to_string())
    }

    /// `ncclBroadcast` of the first `count` bytes of `buf` from `root`, in place.
    pub fn broadcast(
        &self,
        comm: &CommHandle,
        buf: &DeviceBuffer,
        count: usize,
        root: c_int,
        staging: &dyn DeviceStaging,
    ) -> Result<(), String> {
        let stream = staging.stream();
        let address = buf.address_at(0, count).map_err(|e| e.to_string())?;
        // SAFETY: as in `all_gather`.
        let code = unsafe {
            (self.api.broadcast)(
                address as *const c_void,
                address as *mut c_void,
                count,
                NCCL_UINT8,
                root,
                comm.0,
                stream,
            )
        };
        self.check("ncclBroadcast", code).map_err(|e| e.to_string())
    }

    /// `ncclSend` of `count` bytes of `buf` at `offset` to `peer`.
    pub fn send(
        &self,
        comm: &CommHandle,
        buf: &DeviceBuffer,
        offset: usize,
        count: usize,
        peer: c_int,
        staging: &dyn DeviceStaging,
    ) -> Result<(), String> {
        let stream = staging.stream();
        let address = buf.address_at(offset, count).map_err(|e| e.to_string())?;
        // SAFETY: as in `all_gather`.
        let code = unsafe {
            (self.api.send)(
                address as *const c_void,
                count,
                NCCL_UINT8,
                peer,
                comm.0,
                stream,
            )
        };
        self.check("ncclSend", code).map_err(|e| e.to_string())
    }

    /// `ncclRecv` of `count` bytes from `peer` into `buf` at `offset`.
    pub fn recv(
        &self,
        comm: &CommHandle,
        buf: &DeviceBuffer,
        offset: usize,
        count: usize,
        peer: c_int,
        staging: &dyn DeviceStaging,
    ) -> Result<(), String> {
        let stream = staging.stream();
        let address = buf.address_at(offset, count).map_err(|e| e.to_string())?;
        // SAFETY: as in `all_gather`.
        let code = unsafe {
            (self.api.recv)(
                address as *mut c_void,
                count,
                NCCL_UINT8,
                peer,
                comm.0,
                stream,
            )
        };
        self.check("ncclRecv", code).map_err(|e| e.to_string())
    }

    /// `ncclGroupStart`.
    pub fn group_start(&self) -> Result<(), String> {
        // SAFETY: no arguments.
        self.check("ncclGroupStart", unsafe { (self.api.group_start)() })
            .map_err(|e| e.to_string())
    }

    /// `ncclGroupEnd`: launches the grouped sends and receives.
    pub fn group_end(&self) -> Result<(), String> {
        // SAFETY: no arguments.
        self.check("ncclGroupEnd", unsafe { (self.api.group_end)() })
            .map_err(|e| e.to_string())
    }
}
