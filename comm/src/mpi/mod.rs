//! The MPI transport: [`MpiCommunicator`] on `MPI_COMM_WORLD` of the system's MPI library,
//! loaded at run time (nothing of MPI is needed to build).
//!
//! Every collective is MPI's nonblocking variant polled with `MPI_Test` against a deadline, so
//! a rank that died or called a different collective makes the others fail with an error
//! naming the collective and the rank, never hang. MPI is initialised once per process
//! (`MPI_Init_thread`, at least `MPI_THREAD_FUNNELED`) by a process-wide owner, which also
//! finalises it when the process exits — unless a collective failed: a job whose collectives
//! broke cannot finalise (`MPI_Finalize` waits for the lost rank), so the exit handler calls
//! `MPI_Abort` instead and the launcher ends every rank (Open MPI's mpirun prints
//! "MPI_ABORT was invoked on rank R"). Leaving the job without finalising made Debian's
//! mpirun 4.1.4 hang in its own teardown now and then; the abort path did not.
//!
//! Open MPI (pointer handles) is what CI runs; MPICH and its derivatives (int handles) are
//! supported from their `mpi.h` constants but untested.

mod result;
mod sys;

use std::ffi::c_int;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use concord_core::{Error, Result};

use crate::communicator::{exclusive_prefix, Communicator};
use result::{Buffers, CallError, Handle, Loaded, Mpi, Request};

pub use sys::{LIBRARY_ENV, SONAMES};

/// How to get MPI on a machine without it, appended to "not found" errors.
pub const INSTALL_HINT: &str = "install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin \
     libopenmpi3; Fedora: dnf install openmpi) or set CONCORD_MPI_LIBRARY to a libmpi.so";

/// What the process-wide owner could not do, kept to answer every later caller alike.
#[derive(Debug, Clone)]
enum OpenError {
    /// No usable MPI library: `Error::Unavailable`.
    Unavailable(String),
    /// MPI is there but failed to start: `Error::Backend`.
    Failed(String),
}

impl OpenError {
    fn to_error(&self) -> Error {
        match self {
            OpenError::Unavailable(reason) => Error::Unavailable {
                backend: "mpi".into(),
                reason: reason.clone(),
            },
            OpenError::Failed(message) => Error::Backend {
                backend: "mpi".into(),
                message: message.clone(),
            },
        }
    }
}

/// One collective, with the buffers MPI works on.
enum Op {
    AllGatherV(Buffers),
    AllToAllV(Buffers),
    Broadcast(Buffers, c_int),
    Barrier,
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::AllGatherV(_) => "all_gather_v",
            Op::AllToAllV(_) => "all_to_all_v",
            Op::Broadcast(..) => "broadcast",
            Op::Barrier => "barrier",
        }
    }
}

/// The initialised world of one MPI ABI, behind an object so the communicator is not generic.
trait Session: Send + Sync {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    fn describe(&self) -> String;
    /// Runs `op` to completion or until `timeout`; the buffers come back filled.
    fn run(&self, op: Op, timeout: Duration) -> Result<Buffers>;
    fn finalize_at_exit(&self);
}

struct World<H> {
    mpi: Mpi<H>,
    abi: &'static str,
    rank: usize,
    size: usize,
    provided: c_int,
    init_thread: ThreadId,
    /// This process called `MPI_Init_thread` (and so finalises); false when someone else
    /// (a host program) had initialised MPI already.
    owns_init: bool,
    /// Why collectives can no longer run (an earlier one failed or timed out); the lock also
    /// serialises the collectives, as `MPI_THREAD_SERIALIZED` requires.
    failed: Mutex<Option<String>>,
}

fn call_failed(e: CallError) -> OpenError {
    OpenError::Failed(e.to_string())
}

impl<H: Handle> World<H> {
    fn open(mpi: Mpi<H>, abi: &'static str) -> Result<World<H>, OpenError> {
        let owns_init = !mpi.initialized().map_err(call_failed)?;
        let provided = if owns_init {
            if mpi.finalized().map_err(call_failed)? {
                return Err(OpenError::Failed(
                    "MPI was already finalised in this process and cannot start again".into(),
                ));
            }
            let provided = mpi
                .init_thread(sys::MPI_THREAD_SERIALIZED)
                .map_err(call_failed)?;
            if let Err(e) = sys::at_exit(finalize_at_exit) {
                tracing::warn!("MPI_Finalize will not run at exit: {e}");
            }
            provided
        } else {
            mpi.query_thread().map_err(call_failed)?
        };
        if provided < sys::MPI_THREAD_FUNNELED {
            return Err(OpenError::Failed(format!(
                "{} provides thread level {provided} (MPI_THREAD_SINGLE); Concord needs \
                 MPI_THREAD_FUNNELED (1) or higher",
                mpi.version
            )));
        }
        mpi.world_errors_return().map_err(call_failed)?;
        let rank = mpi.world_rank().map_err(call_failed)?;
        let size = mpi.world_size().map_err(call_failed)?;
        let (Ok(rank), Ok(size)) = (usize::try_from(rank), usize::try_from(size)) else {
            return Err(OpenError::Failed(format!(
                "MPI_COMM_WORLD reports rank {rank} of {size}"
            )));
        };
        tracing::debug!(rank, size, provided, version = %mpi.version, path = %mpi.path, "MPI initialised");
        Ok(World {
            mpi,
            abi,
            rank,
            size,
            provided,
            init_thread: std::thread::current().id(),
            owns_init,
            failed: Mutex::new(None),
        })
    }

    fn error(&self, what: &str, cause: impl std::fmt::Display) -> Error {
        Error::Backend {
            backend: "mpi".into(),
            message: format!("rank {} of {}: {what}: {cause}", self.rank, self.size),
        }
    }

    fn start(&self, op: Op) -> Result<Request<H>, CallError> {
        match op {
            Op::AllGatherV(b) => self.mpi.iallgatherv(b),
            Op::AllToAllV(b) => self.mpi.ialltoallv(b),
            Op::Broadcast(b, root) => self.mpi.ibcast(b, root),
            Op::Barrier => self.mpi.ibarrier(),
        }
    }

    /// Polls `request` until it completes, fails, or `deadline` passes.
    fn wait(
        &self,
        mut request: Request<H>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Buffers, String> {
        // Yield first (a collective among ranks on one machine completes in microseconds),
        // then sleep, doubling up to 1 ms, so a long wait does not burn a core.
        let mut polls = 0u32;
        let mut pause = Duration::from_micros(10);
        loop {
            match self.mpi.test(&mut request) {
                Ok(Some(buffers)) => return Ok(buffers),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {:.1} s waiting for the other ranks (one exited or died, \
                     or the ranks called different collectives); set {}=SECONDS to wait longer",
                    timeout.as_secs_f64(),
                    crate::launch::TIMEOUT_ENV
                ));
            }
            polls += 1;
            if polls < 1000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
        }
        // `request` dropped unfinished on every error path: its buffers are leaked, not
        // freed, since MPI may still write to them.
    }
}

impl<H: Handle> Session for World<H> {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn describe(&self) -> String {
        format!(
            "mpi ({}, {} ABI, {})",
            self.mpi.version, self.abi, self.mpi.path
        )
    }

    fn run(&self, op: Op, timeout: Duration) -> Result<Buffers> {
        let what = op.name();
        let deadline = Instant::now() + timeout;
        let mut failed = self
            .failed
            .lock()
            .map_err(|_| self.error(what, "a thread panicked inside an MPI collective"))?;
        if let Some(why) = failed.as_ref() {
            return Err(self.error(
                what,
                format!("not started: an earlier collective failed ({why})"),
            ));
        }
        if self.provided == sys::MPI_THREAD_FUNNELED
            && std::thread::current().id() != self.init_thread
        {
            return Err(self.error(
                what,
                "MPI provides MPI_THREAD_FUNNELED only, and this is not the thread that \
                 initialised it",
            ));
        }
        let outcome = match self.start(op) {
            Ok(request) => self.wait(request, deadline, timeout),
            Err(e) => Err(e.to_string()),
        };
        outcome.map_err(|cause| {
            tracing::error!(rank = self.rank, size = self.size, "mpi {what}: {cause}");
            *failed = Some(format!("{what}: {cause}"));
            self.error(what, cause)
        })
    }

    fn finalize_at_exit(&self) {
        if !self.owns_init {
            return;
        }
        let Ok(failed) = self.failed.try_lock() else {
            tracing::warn!("MPI_Finalize skipped: a collective is still running on another thread");
            return;
        };
        if let Some(why) = failed.as_ref() {
            // The job's collectives are broken: `MPI_Finalize` would wait for the lost rank.
            // MPI_Abort has the launcher end every rank now, whatever they are doing.
            tracing::warn!(
                rank = self.rank,
                "MPI_Abort instead of MPI_Finalize after a failed collective ({why})"
            );
            if let Err(e) = self.mpi.abort_world(1) {
                tracing::warn!("{e}");
            }
            return;
        }
        match self.mpi.finalized() {
            Ok(false) => {
                if let Err(e) = self.mpi.finalize() {
                    tracing::warn!("{e}");
                }
            }
            Ok(true) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

/// The process's MPI world, opened on first use and kept until exit.
static PROCESS: OnceLock<Result<Arc<dyn Session>, OpenError>> = OnceLock::new();

extern "C" fn finalize_at_exit() {
    if let Some(Ok(session)) = PROCESS.get() {
        session.finalize_at_exit();
    }
}

fn open_process() -> Result<Arc<dyn Session>, OpenError> {
    let loaded =
        Loaded::load().map_err(|e| OpenError::Unavailable(format!("{e}; {INSTALL_HINT}")))?;
    Ok(match loaded {
        Loaded::OpenMpi(mpi) => Arc::new(World::open(mpi, "Open MPI")?),
        Loaded::Mpich(mpi) => Arc::new(World::open(mpi, "MPICH, untested")?),
    })
}

/// Says which MPI library would be used, without initialising it: `Ok(version and path)` or
/// why none is usable (for `concord backends`).
pub fn probe() -> std::result::Result<String, String> {
    if let Some(opened) = PROCESS.get() {
        return match opened {
            Ok(session) => Ok(session.describe()),
            Err(e) => Err(e.to_error().to_string()),
        };
    }
    match Loaded::load() {
        Ok(Loaded::OpenMpi(mpi)) => Ok(format!("{} (Open MPI ABI, {})", mpi.version, mpi.path)),
        Ok(Loaded::Mpich(mpi)) => Ok(format!(
            "{} (MPICH ABI, untested, {})",
            mpi.version, mpi.path
        )),
        Err(e) => Err(format!("{e}; {INSTALL_HINT}")),
    }
}

/// A [`Communicator`] on `MPI_COMM_WORLD`.
pub struct MpiCommunicator {
    session: Arc<dyn Session>,
    timeout: Duration,
}

impl MpiCommunicator {
    /// Opens (first call in the process: loads and initialises) MPI. A collective that waits
    /// longer than `timeout` fails on this rank with an error naming it.
    pub fn world(timeout: Duration) -> Result<MpiCommunicator> {
        let session = PROCESS
            .get_or_init(open_process)
            .as_ref()
            .map_err(OpenError::to_error)?;
        Ok(MpiCommunicator {
            session: Arc::clone(session),
            timeout,
        })
    }

    /// The collective timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn check_rank_counts(&self, counts: &[usize], what: &str) -> Result<()> {
        if counts.len() != self.size() {
            return Err(Error::invalid(format!(
                "{what}: {} counts for {} ranks",
                counts.len(),
                self.size()
            )));
        }
        Ok(())
    }
}

/// Byte counts and their offsets as MPI's C `int`s; a part or an offset past `int` is refused
/// (MPI counts are ints; the caller splits the collective).
fn int_layout(counts: &[usize], what: &str) -> Result<(Vec<c_int>, Vec<c_int>)> {
    let mut c_counts = Vec::with_capacity(counts.len());
    let mut c_displs = Vec::with_capacity(counts.len());
    let mut offset = 0usize;
    for (rank, &count) in counts.iter().enumerate() {
        let end = offset.checked_add(count);
        match (
            c_int::try_from(count),
            c_int::try_from(offset),
            end.map(c_int::try_from),
        ) {
            (Ok(c), Ok(d), Some(Ok(_))) => {
                c_counts.push(c);
                c_displs.push(d);
            }
            _ => {
                return Err(Error::invalid(format!(
                    "{what}: rank {rank}'s part ({count} bytes at offset {offset}) goes past \
                     {} bytes, the most an MPI int count or displacement can address; split \
                     the collective",
                    c_int::MAX
                )))
            }
        }
        offset += count;
    }
    Ok((c_counts, c_displs))
}

impl Communicator for MpiCommunicator {
    fn rank(&self) -> usize {
        self.session.rank()
    }
    fn size(&self) -> usize {
        self.session.size()
    }
    fn describe(&self) -> String {
        self.session.describe()
    }

    fn all_gather_v(&self, send: &[u8], counts: &[usize], recv: &mut [u8]) -> Result<()> {
        let what = "all_gather_v";
        self.check_rank_counts(counts, what)?;
        exclusive_prefix(counts, recv.len(), what)?;
        if send.len() != counts[self.rank()] {
            return Err(Error::invalid(format!(
                "{what}: rank {} sends {} bytes, counts say {}",
                self.rank(),
                send.len(),
                counts[self.rank()]
            )));
        }
        let (recv_counts, recv_displs) = int_layout(counts, what)?;
        let buffers = Buffers {
            send: send.to_vec(),
            recv: vec![0; recv.len()],
            recv_counts,
            recv_displs,
            ..Buffers::default()
        };
        let done = self.session.run(Op::AllGatherV(buffers), self.timeout)?;
        recv.copy_from_slice(&done.recv);
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
        exclusive_prefix(send_counts, send.len(), "all_to_all_v send")?;
        exclusive_prefix(recv_counts, recv.len(), "all_to_all_v recv")?;
        let (c_send_counts, send_displs) = int_layout(send_counts, "all_to_all_v send")?;
        let (c_recv_counts, recv_displs) = int_layout(recv_counts, "all_to_all_v recv")?;
        let buffers = Buffers {
            send: send.to_vec(),
            send_counts: c_send_counts,
            send_displs,
            recv: vec![0; recv.len()],
            recv_counts: c_recv_counts,
            recv_displs,
        };
        let done = self.session.run(Op::AllToAllV(buffers), self.timeout)?;
        recv.copy_from_slice(&done.recv);
        Ok(())
    }

    fn broadcast(&self, buf: &mut [u8], root: usize) -> Result<()> {
        if root >= self.size() {
            return Err(Error::invalid(format!(
                "broadcast root {root} of {} ranks",
                self.size()
            )));
        }
        int_layout(&[buf.len()], "broadcast")?;
        let buffers = Buffers {
            recv: buf.to_vec(),
            ..Buffers::default()
        };
        // `root < size`, and MPI's size is an int.
        let root = c_int::try_from(root).map_err(|_| Error::invalid("broadcast root"))?;
        let done = self
            .session
            .run(Op::Broadcast(buffers, root), self.timeout)?;
        buf.copy_from_slice(&done.recv);
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.session.run(Op::Barrier, self.timeout).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_offsets_within_int_become_c_ints() {
        let (counts, displs) = int_layout(&[3, 0, 5], "t").unwrap();
        assert_eq!(counts, [3, 0, 5]);
        assert_eq!(displs, [0, 3, 3]);
    }

    #[test]
    fn a_part_past_int_max_is_refused_with_the_rank_named() {
        // 2^31 - 1 is the largest int; a part ending one byte past it cannot be addressed.
        let max = c_int::MAX as usize;
        assert!(int_layout(&[max], "t").is_ok());
        let err = int_layout(&[1, max], "all_gather_v")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("all_gather_v") && err.contains("rank 1"),
            "{err}"
        );
        let err = int_layout(&[max + 1], "t").unwrap_err().to_string();
        assert!(err.contains("rank 0"), "{err}");
    }
}
