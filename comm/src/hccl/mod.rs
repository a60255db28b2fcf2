//! The HCCL transport (Huawei Ascend): [`HcclCommunicator`] runs every collective on device
//! memory of a [`DeviceStaging`] (ACL's in a job, the host one in tests), with libhccl loaded
//! at run time. The same shape as the NCCL transport (`crate::nccl`):
//!
//! - Bootstrap: rank 0's `HcclGetRootInfo` (a 4108-byte opaque blob, hccl_types.h) is
//!   broadcast over another communicator (MPI in a job, an in-process group in tests), then
//!   every rank calls `HcclCommInitRootInfo` on a helper thread against the timeout.
//! - `all_gather_v` pads every part to the largest and runs one `HcclAllGather`;
//!   `all_to_all_v` is one `HcclAlltoAllV` (byte counts and displacements as HCCL's uint64
//!   arrays); `broadcast` is `HcclBroadcast` in place; `barrier` is `HcclBarrier`.
//! - Every collective is enqueued on the staging's stream, which is polled against the
//!   deadline together with `HcclGetCommAsyncError` when the library exports it (newer
//!   CANN); without it a peer's failure shows only as the deadline. HCCL's public headers
//!   have no abort, so a failed communicator is neither destroyed (`HcclCommDestroy` could
//!   wait on the stuck work) nor used again, and the failed collective's buffers are leaked:
//!   the process is expected to exit on the error.
//!
//! Run here on the test stand-in only (comm/standin/hccl_standin.c, ranks as threads, host
//! memory as device memory); nothing has run on an NPU.

mod result;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concord_core::{Error, Result};

use crate::communicator::{exclusive_prefix, Communicator};
use crate::device_transport::{
    check_broadcast_root, check_rank_counts, init_on_helper_thread, rank_error, wait_for_stream,
    PaddedGather,
};
use crate::staging::{DeviceBuffer, DeviceStaging};
use crate::vendor::sys::{HCCL_ROOT_INFO_BYTES, HCCL_SUCCESS};
use result::CommHandle;
pub use result::HcclLibrary;

/// The name in errors and logs.
const NAME: &str = "hccl";

/// Where libhccl is searched (`$ASCEND_HOME_PATH/lib64`, …, then the loader's path).
pub fn candidates() -> Vec<PathBuf> {
    crate::vendor::sys::hccl_candidates()
}

/// Loads libhccl from `candidates` (`Error::Unavailable` naming every path tried).
pub fn load_library(candidates: &[PathBuf]) -> Result<Arc<HcclLibrary>> {
    HcclLibrary::open_first(candidates)
        .map(Arc::new)
        .map_err(|reason| Error::Unavailable {
            backend: NAME.into(),
            reason,
        })
}

struct State {
    /// `None` once failed (the handle is leaked: see the module docs).
    comm: Option<CommHandle>,
    /// Why collectives can no longer run.
    failed: Option<String>,
}

/// A [`Communicator`] over HCCL, on one device per rank.
pub struct HcclCommunicator {
    library: Arc<HcclLibrary>,
    staging: Arc<dyn DeviceStaging>,
    rank: usize,
    size: usize,
    timeout: Duration,
    /// The lock also serialises the collectives: an `HcclComm` takes one call at a time.
    state: Mutex<State>,
}

impl HcclCommunicator {
    /// Every rank of `bootstrap` calls this at the same time: rank 0 makes the root info and
    /// broadcasts it over `bootstrap`, then each rank joins on `staging`'s device.
    pub fn bootstrap(
        library: Arc<HcclLibrary>,
        bootstrap: &dyn Communicator,
        staging: Arc<dyn DeviceStaging>,
        timeout: Duration,
    ) -> Result<HcclCommunicator> {
        let (rank, size) = (bootstrap.rank(), bootstrap.size());
        // Byte 0 says whether rank 0 got the root info, so its failure fails every rank.
        let mut message = vec![0u8; 1 + HCCL_ROOT_INFO_BYTES];
        let mut root_error = None;
        if rank == 0 {
            // HcclGetRootInfo runs on the device rank 0 uses.
            match staging
                .make_current()
                .map_err(|e| e.to_string())
                .and_then(|()| library.root_info())
            {
                Ok(info) => {
                    message[0] = 1;
                    message[1..].copy_from_slice(&info[..]);
                }
                Err(e) => root_error = Some(e),
            }
        }
        bootstrap.broadcast(&mut message, 0)?;
        if message[0] != 1 {
            return Err(Error::Backend {
                backend: NAME.into(),
                message: format!(
                    "rank {rank} of {size}: rank 0 could not make the root info{}",
                    root_error.map(|e| format!(": {e}")).unwrap_or_default()
                ),
            });
        }
        let mut info = [0u8; HCCL_ROOT_INFO_BYTES];
        info.copy_from_slice(&message[1..]);
        HcclCommunicator::join(library, &info, rank, size, staging, timeout)
    }

    /// Joins the communicator of root info `info` as `rank` of `size`; fails after
    /// `timeout` if the other ranks do not join.
    pub fn join(
        library: Arc<HcclLibrary>,
        info: &[u8; HCCL_ROOT_INFO_BYTES],
        rank: usize,
        size: usize,
        staging: Arc<dyn DeviceStaging>,
        timeout: Duration,
    ) -> Result<HcclCommunicator> {
        let (Ok(c_rank), Ok(c_size)) = (u32::try_from(rank), u32::try_from(size)) else {
            return Err(Error::invalid(format!("{NAME}: rank {rank} of {size}")));
        };
        if rank >= size {
            return Err(Error::invalid(format!("{NAME}: rank {rank} of {size}")));
        }
        if !library.has_async_error() {
            tracing::warn!(
                "{}: no HcclGetCommAsyncError; a failed peer shows only as the timeout",
                library.path.display()
            );
        }
        let (init_library, late_library) = (Arc::clone(&library), Arc::clone(&library));
        let init_staging = Arc::clone(&staging);
        let info = Box::new(*info);
        let comm = init_on_helper_thread(
            NAME,
            "HcclCommInitRootInfo",
            rank,
            size,
            timeout,
            move || {
                init_staging
                    .make_current()
                    .map_err(|e| e.to_string())
                    .and_then(|()| init_library.init_root_info(c_size, &info, c_rank))
            },
            move |comm| {
                if let Err(e) = late_library.destroy(comm) {
                    tracing::warn!("{e}");
                }
            },
        )?;
        tracing::debug!(rank, size, device = %staging.describe(), "hccl communicator joined");
        Ok(HcclCommunicator {
            library,
            staging,
            rank,
            size,
            timeout,
            state: Mutex::new(State {
                comm: Some(comm),
                failed: None,
            }),
        })
    }

    fn error(&self, what: &str, cause: impl std::fmt::Display) -> Error {
        rank_error(NAME, self.rank, self.size, what, cause)
    }

    /// Enqueues a collective on `buffers` with `enqueue` and waits for the stream against the
    /// deadline. On an error or a timeout the communicator stays failed and the buffers are
    /// leaked (no abort: see the module docs).
    fn run(
        &self,
        what: &str,
        buffers: Vec<DeviceBuffer>,
        enqueue: impl FnOnce(
            &HcclLibrary,
            &CommHandle,
            &[DeviceBuffer],
        ) -> std::result::Result<(), String>,
    ) -> Result<Vec<DeviceBuffer>> {
        let deadline = Instant::now() + self.timeout;
        let mut state = self
            .state
            .lock()
            .map_err(|_| self.error(what, "a thread panicked inside a collective"))?;
        if let Some(why) = state.failed.as_ref() {
            return Err(self.error(
                what,
                format!("not started: an earlier collective failed ({why})"),
            ));
        }
        let Some(comm) = state.comm.as_ref() else {
            return Err(self.error(what, "the communicator is gone"));
        };
        let outcome = self
            .staging
            .make_current()
            .map_err(|e| e.to_string())
            .and_then(|()| enqueue(&self.library, comm, &buffers))
            .and_then(|()| self.wait(comm, deadline));
        let Err(cause) = outcome else {
            return Ok(buffers);
        };
        tracing::error!(rank = self.rank, size = self.size, "hccl {what}: {cause}");
        state.failed = Some(format!("{what}: {cause}"));
        // The handle is dropped without HcclCommDestroy (so `Drop` does not call it either):
        // destroying could block on the stuck work, and HCCL has no public abort.
        state.comm = None;
        buffers.into_iter().for_each(DeviceBuffer::leak);
        Err(self.error(
            what,
            format!("{cause}; the communicator is left unused (HCCL has no public abort)"),
        ))
    }

    /// Polls the stream and the communicator's asynchronous error until the stream is done,
    /// an error shows, or `deadline` passes.
    fn wait(&self, comm: &CommHandle, deadline: Instant) -> std::result::Result<(), String> {
        wait_for_stream(self.staging.as_ref(), self.timeout, deadline, || {
            let state = self.library.async_error(comm)?;
            if state != HCCL_SUCCESS {
                return Err(format!(
                    "the communicator reports HcclResult {state}: {}",
                    self.library.error_text(state)
                ));
            }
            Ok(())
        })
    }

    fn check_rank_counts(&self, counts: &[usize], what: &str) -> Result<()> {
        check_rank_counts(counts, self.size, what)
    }
}

impl Drop for HcclCommunicator {
    fn drop(&mut self) {
        if let Ok(mut state) = self.state.lock() {
            if let Some(comm) = state.comm.take() {
                if let Err(e) = self.library.destroy(comm) {
                    tracing::warn!("{e}");
                }
            }
        }
    }
}

impl Communicator for HcclCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn describe(&self) -> String {
        format!(
            "hccl ({}, {})",
            self.library.path.display(),
            self.staging.describe()
        )
    }

    fn all_gather_v(&self, send: &[u8], counts: &[usize], recv: &mut [u8]) -> Result<()> {
        let what = "all_gather_v";
        let Some(plan) = PaddedGather::plan(what, self.rank, self.size, send, counts, recv)? else {
            return Ok(());
        };
        // Every part padded to the largest: one HcclAllGather (as the NCCL transport does).
        let (part, padded) = (plan.part, plan.padded);
        let send_buf = DeviceBuffer::new(&self.staging, part)?;
        send_buf.upload(0, send)?;
        let recv_buf = DeviceBuffer::new(&self.staging, padded)?;
        let (size, staging) = (self.size, self.staging.as_ref());
        let buffers = self.run(what, vec![send_buf, recv_buf], |library, comm, b| {
            library.all_gather(comm, &b[0], &b[1], part, size, staging)
        })?;
        let mut gathered = vec![0u8; padded];
        buffers[1].download(0, &mut gathered)?;
        plan.unpack(&gathered, counts, recv);
        Ok(())
    }

    fn all_to_all_v(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    ) -> Result<()> {
        self.check_rank_counts(send_counts, "all_to_all_v send")?;
        self.check_rank_counts(recv_counts, "all_to_all_v recv")?;
        let send_offsets = exclusive_prefix(send_counts, send.len(), "all_to_all_v send")?;
        let recv_offsets = exclusive_prefix(recv_counts, recv.len(), "all_to_all_v recv")?;
        let send_buf = DeviceBuffer::from_host(&self.staging, send)?;
        let recv_buf = DeviceBuffer::new(&self.staging, recv.len())?;
        let staging = self.staging.as_ref();
        // Every rank calls HcclAlltoAllV, even with nothing to move: a peer may be sending.
        let buffers = self.run(
            "all_to_all_v",
            vec![send_buf, recv_buf],
            |library, comm, b| {
                library.all_to_all_v(
                    comm,
                    &b[0],
                    send_counts,
                    &send_offsets,
                    &b[1],
                    recv_counts,
                    &recv_offsets,
                    staging,
                )
            },
        )?;
        buffers[1].download(0, recv)
    }

    fn broadcast(&self, buf: &mut [u8], root: usize) -> Result<()> {
        check_broadcast_root(root, self.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let device = DeviceBuffer::from_host(&self.staging, buf)?;
        let (count, staging) = (buf.len(), self.staging.as_ref());
        // `root < size`, which fits a u32 (checked when the communicator joined).
        let buffers = self.run("broadcast", vec![device], |library, comm, b| {
            library.broadcast(comm, &b[0], count, root as u32, staging)
        })?;
        buffers[0].download(0, buf)
    }

    fn barrier(&self) -> Result<()> {
        let staging = self.staging.as_ref();
        self.run("barrier", Vec::new(), |library, comm, _| {
            library.barrier(comm, staging)
        })
        .map(|_| ())
    }
}
