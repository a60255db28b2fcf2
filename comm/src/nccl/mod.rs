//! The NCCL transport, which is also the RCCL one (RCCL exports NCCL's API from
//! `librccl.so`): [`NcclCommunicator`] runs every collective on device memory of a
//! [`DeviceStaging`], with the vendor library loaded at run time.
//!
//! - Bootstrap: rank 0's `ncclGetUniqueId` is broadcast over another communicator — MPI in a
//!   job (one process per device under `mpirun`, as vLLM, SGLang and DeepSpeed launch), an
//!   in-process group in tests — then every rank calls `ncclCommInitRank`. Init blocks until
//!   all ranks joined, so it runs on a helper thread and a rank that never joins makes the
//!   others fail after the timeout (the helper thread stays blocked in NCCL; the process is
//!   expected to exit on that error).
//! - `all_gather_v` pads every part to the largest and runs one `ncclAllGather`: the counts
//!   are already known to every rank (the trait passes them all), so no size exchange is
//!   needed, and one ring all-gather is bandwidth-optimal where `size` grouped
//!   `ncclBroadcast`s would each launch their own kernel. The layouts' parts differ by at most
//!   a row, so padding costs little.
//! - `all_to_all_v` is `ncclSend`/`ncclRecv` per non-empty part inside
//!   `ncclGroupStart`/`ncclGroupEnd`; `broadcast` is `ncclBroadcast` in place; `barrier` is a
//!   one-byte all-gather.
//! - Every collective is enqueued on the staging's stream, which is polled with
//!   `ncclCommGetAsyncError` against the deadline (the loop NVIDIA's user guide gives for
//!   fault tolerance); an error or the deadline calls `ncclCommAbort`, and every later
//!   collective fails at once naming the first failure.
//!
//! Run here on the test stand-in only (comm/standin/nccl_standin.c, ranks as threads, host
//! memory as device memory); nothing has run on GPUs.

mod result;

use std::ffi::c_int;
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
use crate::vendor::nccl_version_text;
use crate::vendor::sys::{NCCL_IN_PROGRESS, NCCL_SUCCESS, NCCL_UNIQUE_ID_BYTES};
use result::CommHandle;
pub use result::NcclLibrary;

/// Which build of the API: NCCL (CUDA) or RCCL (ROCm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// NVIDIA's NCCL, `libnccl.so.2`.
    Nccl,
    /// AMD's RCCL, `librccl.so.1`.
    Rccl,
}

impl Flavour {
    /// `"nccl"` or `"rccl"`.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Nccl => "nccl",
            Flavour::Rccl => "rccl",
        }
    }

    /// Where the library is searched.
    pub fn candidates(self) -> Vec<PathBuf> {
        match self {
            Flavour::Nccl => crate::vendor::sys::nccl_candidates(),
            Flavour::Rccl => crate::vendor::sys::rccl_candidates(),
        }
    }
}

/// Loads `flavour`'s library from `candidates` (`Error::Unavailable` naming every path tried).
pub fn load_library(flavour: Flavour, candidates: &[PathBuf]) -> Result<Arc<NcclLibrary>> {
    NcclLibrary::open_first(candidates)
        .map(Arc::new)
        .map_err(|reason| Error::Unavailable {
            backend: flavour.name().into(),
            reason,
        })
}

/// Why a collective failed, and whether its buffers may still be written (the abort failed).
struct Failure {
    error: Error,
    buffers_may_be_in_use: bool,
}

struct State {
    /// `None` once aborted.
    comm: Option<CommHandle>,
    /// Why collectives can no longer run.
    failed: Option<String>,
}

/// A [`Communicator`] over NCCL or RCCL, on one device per rank.
pub struct NcclCommunicator {
    library: Arc<NcclLibrary>,
    flavour: Flavour,
    staging: Arc<dyn DeviceStaging>,
    rank: usize,
    size: usize,
    timeout: Duration,
    /// The lock also serialises the collectives: an `ncclComm_t` takes one call at a time.
    state: Mutex<State>,
}

impl NcclCommunicator {
    /// Every rank of `bootstrap` calls this at the same time: rank 0 makes the unique id and
    /// broadcasts it over `bootstrap`, then each rank joins on `staging`'s device. Collectives
    /// wait `timeout` for the other ranks.
    pub fn bootstrap(
        library: Arc<NcclLibrary>,
        flavour: Flavour,
        bootstrap: &dyn Communicator,
        staging: Arc<dyn DeviceStaging>,
        timeout: Duration,
    ) -> Result<NcclCommunicator> {
        let (rank, size) = (bootstrap.rank(), bootstrap.size());
        // Byte 0 says whether rank 0 got an id, so a failure there fails every rank at once.
        let mut message = [0u8; 1 + NCCL_UNIQUE_ID_BYTES];
        let mut root_error = None;
        if rank == 0 {
            match library.unique_id() {
                Ok(id) => {
                    message[0] = 1;
                    message[1..].copy_from_slice(&id);
                }
                Err(e) => root_error = Some(e.to_string()),
            }
        }
        bootstrap.broadcast(&mut message, 0)?;
        if message[0] != 1 {
            return Err(Error::Backend {
                backend: flavour.name().into(),
                message: format!(
                    "rank {rank} of {size}: rank 0 could not make the unique id{}",
                    root_error.map(|e| format!(": {e}")).unwrap_or_default()
                ),
            });
        }
        let mut id = [0u8; NCCL_UNIQUE_ID_BYTES];
        id.copy_from_slice(&message[1..]);
        NcclCommunicator::join(library, flavour, &id, rank, size, staging, timeout)
    }

    /// Joins the communicator of unique id `id` as `rank` of `size` (every rank with the same
    /// id); fails after `timeout` if the other ranks do not join.
    pub fn join(
        library: Arc<NcclLibrary>,
        flavour: Flavour,
        id: &[u8; NCCL_UNIQUE_ID_BYTES],
        rank: usize,
        size: usize,
        staging: Arc<dyn DeviceStaging>,
        timeout: Duration,
    ) -> Result<NcclCommunicator> {
        let name = flavour.name();
        let (Ok(c_rank), Ok(c_size)) = (c_int::try_from(rank), c_int::try_from(size)) else {
            return Err(Error::invalid(format!("{name}: rank {rank} of {size}")));
        };
        if rank >= size {
            return Err(Error::invalid(format!("{name}: rank {rank} of {size}")));
        }
        let (init_library, late_library) = (Arc::clone(&library), Arc::clone(&library));
        let (init_staging, id) = (Arc::clone(&staging), *id);
        let comm = init_on_helper_thread(
            name,
            "ncclCommInitRank",
            rank,
            size,
            timeout,
            move || {
                init_staging
                    .make_current()
                    .and_then(|()| {
                        init_library
                            .init_rank(c_size, &id, c_rank)
                            .map_err(|e| Error::Backend {
                                backend: name.into(),
                                message: e.to_string(),
                            })
                    })
                    .map_err(|e| e.to_string())
            },
            move |comm| {
                if let Err(e) = late_library.abort(comm) {
                    tracing::warn!("{e}");
                }
            },
        )?;
        tracing::debug!(rank, size, device = %staging.describe(), "{name} communicator joined");
        Ok(NcclCommunicator {
            library,
            flavour,
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

    /// The device staging this communicator runs on.
    pub fn staging(&self) -> &Arc<dyn DeviceStaging> {
        &self.staging
    }

    fn error(&self, what: &str, cause: impl std::fmt::Display) -> Error {
        rank_error(self.flavour.name(), self.rank, self.size, what, cause)
    }

    /// Enqueues a collective with `enqueue` and waits for the stream against the deadline.
    /// On an error or a timeout the communicator is aborted and stays failed.
    fn run(
        &self,
        what: &str,
        enqueue: impl FnOnce(&NcclLibrary, &CommHandle) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), Failure> {
        let deadline = Instant::now() + self.timeout;
        let plain = |error| Failure {
            error,
            buffers_may_be_in_use: false,
        };
        let mut state = self
            .state
            .lock()
            .map_err(|_| plain(self.error(what, "a thread panicked inside a collective")))?;
        if let Some(why) = state.failed.as_ref() {
            return Err(plain(self.error(
                what,
                format!("not started: an earlier collective failed ({why})"),
            )));
        }
        let Some(comm) = state.comm.as_ref() else {
            return Err(plain(self.error(what, "the communicator was aborted")));
        };
        let outcome = self
            .staging
            .make_current()
            .map_err(|e| e.to_string())
            .and_then(|()| enqueue(&self.library, comm))
            .and_then(|()| self.wait(comm, deadline));
        let Err(cause) = outcome else {
            return Ok(());
        };
        tracing::error!(
            rank = self.rank,
            size = self.size,
            "{} {what}: {cause}",
            self.flavour.name()
        );
        state.failed = Some(format!("{what}: {cause}"));
        let mut buffers_may_be_in_use = false;
        let mut cause = cause;
        if let Some(comm) = state.comm.take() {
            // nccl.h: ncclCommAbort "aborts any uncompleted operations", so the buffers are
            // not written afterwards — unless the abort itself failed.
            if let Err(e) = self.library.abort(comm) {
                buffers_may_be_in_use = true;
                cause = format!("{cause}; and {e}");
            } else {
                cause = format!("{cause}; the communicator was aborted");
            }
        }
        Err(Failure {
            error: self.error(what, cause),
            buffers_may_be_in_use,
        })
    }

    /// Polls the stream and the communicator's asynchronous error until the stream is done,
    /// an error shows, or `deadline` passes.
    fn wait(&self, comm: &CommHandle, deadline: Instant) -> std::result::Result<(), String> {
        wait_for_stream(self.staging.as_ref(), self.timeout, deadline, || {
            let state = self.library.async_error(comm).map_err(|e| e.to_string())?;
            if state != NCCL_SUCCESS && state != NCCL_IN_PROGRESS {
                return Err(format!(
                    "the communicator reports ncclResult_t {state}: {}",
                    self.library.error_text(state)
                ));
            }
            Ok(())
        })
    }

    /// Runs `what` on `buffers`; when the collective failed and its abort did too, the
    /// buffers are leaked rather than freed under the library's feet.
    fn run_owned(
        &self,
        what: &str,
        buffers: Vec<DeviceBuffer>,
        enqueue: impl FnOnce(
            &NcclLibrary,
            &CommHandle,
            &[DeviceBuffer],
        ) -> std::result::Result<(), String>,
    ) -> Result<Vec<DeviceBuffer>> {
        match self.run(what, |library, comm| enqueue(library, comm, &buffers)) {
            Ok(()) => Ok(buffers),
            Err(failure) => {
                if failure.buffers_may_be_in_use {
                    buffers.into_iter().for_each(DeviceBuffer::leak);
                }
                Err(failure.error)
            }
        }
    }

    /// Device-resident all-gather of `count` bytes per rank: `send` (at least `count` bytes)
    /// into `recv` (at least `size × count`), both on this communicator's staging. After an
    /// error that says the abort failed, the caller must [`DeviceBuffer::leak`] both.
    pub fn all_gather_device(
        &self,
        send: &DeviceBuffer,
        recv: &DeviceBuffer,
        count: usize,
    ) -> Result<()> {
        let size = self.size;
        let staging = self.staging.as_ref();
        self.run("all_gather", |library, comm| {
            library.all_gather(comm, send, recv, count, size, staging)
        })
        .map_err(|f| f.error)
    }

    /// `all_gather_v` under the name `what` (the barrier is one too).
    fn padded_all_gather(
        &self,
        what: &str,
        send: &[u8],
        counts: &[usize],
        recv: &mut [u8],
    ) -> Result<()> {
        let Some(plan) = PaddedGather::plan(what, self.rank, self.size, send, counts, recv)? else {
            return Ok(());
        };
        // Every part padded to the largest: one ncclAllGather (see the module docs).
        let (part, padded) = (plan.part, plan.padded);
        let send_buf = DeviceBuffer::new(&self.staging, part)?;
        send_buf.upload(0, send)?;
        let recv_buf = DeviceBuffer::new(&self.staging, padded)?;
        let (size, staging) = (self.size, self.staging.as_ref());
        let buffers = self.run_owned(what, vec![send_buf, recv_buf], |library, comm, b| {
            library.all_gather(comm, &b[0], &b[1], part, size, staging)
        })?;
        let mut gathered = vec![0u8; padded];
        buffers[1].download(0, &mut gathered)?;
        plan.unpack(&gathered, counts, recv);
        Ok(())
    }

    fn check_rank_counts(&self, counts: &[usize], what: &str) -> Result<()> {
        check_rank_counts(counts, self.size, what)
    }
}

impl Drop for NcclCommunicator {
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

impl Communicator for NcclCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn describe(&self) -> String {
        format!(
            "{} {} ({}, {})",
            self.flavour.name(),
            nccl_version_text(self.library.version),
            self.library.path.display(),
            self.staging.describe()
        )
    }

    fn all_gather_v(&self, send: &[u8], counts: &[usize], recv: &mut [u8]) -> Result<()> {
        self.padded_all_gather("all_gather_v", send, counts, recv)
    }

    fn all_to_all_v(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    ) -> Result<()> {
        let what = "all_to_all_v";
        self.check_rank_counts(send_counts, "all_to_all_v send")?;
        self.check_rank_counts(recv_counts, "all_to_all_v recv")?;
        let send_offsets = exclusive_prefix(send_counts, send.len(), "all_to_all_v send")?;
        let recv_offsets = exclusive_prefix(recv_counts, recv.len(), "all_to_all_v recv")?;
        if send.is_empty() && recv.is_empty() {
            return Ok(());
        }
        let send_buf = DeviceBuffer::from_host(&self.staging, send)?;
        let recv_buf = DeviceBuffer::new(&self.staging, recv.len())?;
        let staging = self.staging.as_ref();
        let buffers = self.run_owned(what, vec![send_buf, recv_buf], |library, comm, b| {
            library.group_start()?;
            let mut enqueued = Ok(());
            for peer in 0..send_counts.len() {
                // `peer < size`, which fits a c_int (checked when the communicator joined).
                let c_peer = peer as c_int;
                if send_counts[peer] > 0 {
                    enqueued = enqueued.and_then(|()| {
                        library.send(
                            comm,
                            &b[0],
                            send_offsets[peer],
                            send_counts[peer],
                            c_peer,
                            staging,
                        )
                    });
                }
                if recv_counts[peer] > 0 {
                    enqueued = enqueued.and_then(|()| {
                        library.recv(
                            comm,
                            &b[1],
                            recv_offsets[peer],
                            recv_counts[peer],
                            c_peer,
                            staging,
                        )
                    });
                }
            }
            // The group is closed even after a failed call, so the library is not left
            // inside it.
            let ended = library.group_end();
            enqueued.and(ended)
        })?;
        buffers[1].download(0, recv)
    }

    fn broadcast(&self, buf: &mut [u8], root: usize) -> Result<()> {
        check_broadcast_root(root, self.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let device = DeviceBuffer::from_host(&self.staging, buf)?;
        let (count, staging) = (buf.len(), self.staging.as_ref());
        let buffers = self.run_owned("broadcast", vec![device], |library, comm, b| {
            library.broadcast(comm, &b[0], count, root as c_int, staging)
        })?;
        buffers[0].download(0, buf)
    }

    fn barrier(&self) -> Result<()> {
        let mut recv = vec![0u8; self.size];
        self.padded_all_gather("barrier", &[1], &vec![1; self.size], &mut recv)
    }
}
