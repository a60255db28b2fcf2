//! What the device-memory transports (`crate::nccl`, `crate::hccl`) share: the rank-count and
//! argument checks, the padded all-gather's plan and unpacking, the stream wait against a
//! deadline, and the rank-qualified error. Each transport keeps its own library calls, its own
//! failure handling (NCCL aborts, HCCL cannot) and its own error texts for library states.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use concord_core::{Error, Result};

use crate::communicator::exclusive_prefix;
use crate::staging::DeviceStaging;

/// An `Error::Backend` of `backend` that names the rank: `rank R of S: WHAT: CAUSE`.
pub(crate) fn rank_error(
    backend: &str,
    rank: usize,
    size: usize,
    what: &str,
    cause: impl std::fmt::Display,
) -> Error {
    Error::Backend {
        backend: backend.into(),
        message: format!("rank {rank} of {size}: {what}: {cause}"),
    }
}

/// Fails unless there is one count per rank.
pub(crate) fn check_rank_counts(counts: &[usize], size: usize, what: &str) -> Result<()> {
    if counts.len() != size {
        return Err(Error::invalid(format!(
            "{what}: {} counts for {size} ranks",
            counts.len()
        )));
    }
    Ok(())
}

/// Fails unless `root` is one of the `size` ranks.
pub(crate) fn check_broadcast_root(root: usize, size: usize) -> Result<()> {
    if root >= size {
        return Err(Error::invalid(format!(
            "broadcast root {root} of {size} ranks"
        )));
    }
    Ok(())
}

/// How an all-gather of unequal parts runs as one all-gather of equal ones: every part padded
/// to the largest (`part` bytes), `padded = part × size` bytes gathered.
pub(crate) struct PaddedGather {
    /// Bytes per rank after padding (the largest count); never 0.
    pub part: usize,
    /// Bytes gathered in all.
    pub padded: usize,
    /// Where each rank's part goes in the caller's `recv`.
    pub offsets: Vec<usize>,
}

impl PaddedGather {
    /// Checks `all_gather_v`'s arguments (named `what` in errors) for `rank` of `size`; `None`
    /// when every part is empty and there is nothing to move.
    pub fn plan(
        what: &str,
        rank: usize,
        size: usize,
        send: &[u8],
        counts: &[usize],
        recv: &[u8],
    ) -> Result<Option<PaddedGather>> {
        check_rank_counts(counts, size, what)?;
        let offsets = exclusive_prefix(counts, recv.len(), what)?;
        if send.len() != counts[rank] {
            return Err(Error::invalid(format!(
                "{what}: rank {rank} sends {} bytes, counts say {}",
                send.len(),
                counts[rank]
            )));
        }
        let part = counts.iter().copied().max().unwrap_or(0);
        if part == 0 {
            return Ok(None);
        }
        let padded = part
            .checked_mul(size)
            .ok_or_else(|| Error::invalid(format!("{what}: {part} bytes × {size} ranks")))?;
        Ok(Some(PaddedGather {
            part,
            padded,
            offsets,
        }))
    }

    /// Copies each rank's `counts[r]` bytes from its padded slot of `gathered` into `recv`.
    pub fn unpack(&self, gathered: &[u8], counts: &[usize], recv: &mut [u8]) {
        let part = self.part;
        for (r, (&count, &offset)) in counts.iter().zip(&self.offsets).enumerate() {
            recv[offset..offset + count].copy_from_slice(&gathered[r * part..r * part + count]);
        }
    }
}

/// Polls `staging`'s stream and `async_error` (the communicator's asynchronous state, an
/// error text when it reports a failure) until the stream is done, an error shows, or
/// `deadline` passes (`timeout` is what the deadline was set from, for the message).
pub(crate) fn wait_for_stream(
    staging: &dyn DeviceStaging,
    timeout: Duration,
    deadline: Instant,
    mut async_error: impl FnMut() -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut polls = 0u32;
    let mut pause = Duration::from_micros(10);
    loop {
        async_error()?;
        if staging.stream_done().map_err(|e| e.to_string())? {
            return Ok(());
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
        // Spin briefly (collectives on the stand-in finish in microseconds), then back off.
        if polls < 1000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }
}

/// Runs a communicator's blocking init (`init`, the library call `init_call`) on a helper
/// thread named `BACKEND-init-RANK` and waits `timeout` for it: init blocks until every rank
/// joined, so a rank that never joins must fail the others instead of hanging them. A handle
/// that arrives after the timeout goes to `discard_late`.
pub(crate) fn init_on_helper_thread<C: Send + 'static>(
    backend: &'static str,
    init_call: &str,
    rank: usize,
    size: usize,
    timeout: Duration,
    init: impl FnOnce() -> std::result::Result<C, String> + Send + 'static,
    discard_late: impl FnOnce(C) + Send + 'static,
) -> Result<C> {
    let error = |message: String| Error::Backend {
        backend: backend.into(),
        message: format!("rank {rank} of {size}: {message}"),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("{backend}-init-{rank}"))
        .spawn(move || {
            // The receiver is gone when the join timed out: release what came too late.
            if let Err(mpsc::SendError(Ok(comm))) = tx.send(init()) {
                discard_late(comm);
            }
        })
        .map_err(|e| error(format!("cannot start the init thread: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(comm)) => Ok(comm),
        Ok(Err(e)) => Err(error(e)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(error(format!(
            "{init_call} timed out after {:.1} s waiting for the other ranks to join (one \
             exited, died or never started); set {}=SECONDS to wait longer",
            timeout.as_secs_f64(),
            crate::launch::TIMEOUT_ENV
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(error("the init thread ended without an answer".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_gather_places_each_part_at_its_offset() {
        // Counts 2, 1, 3 pad to parts of 3: slots [a a _][b _ _][c c c] → recv "aabccc".
        let counts = [2, 1, 3];
        let mut recv = [0u8; 6];
        let plan = PaddedGather::plan("t", 0, 3, b"aa", &counts, &recv)
            .unwrap()
            .unwrap();
        assert_eq!((plan.part, plan.padded), (3, 9));
        plan.unpack(b"aaxbyyccc", &counts, &mut recv);
        assert_eq!(&recv, b"aabccc");
    }

    #[test]
    fn padded_gather_checks_its_arguments() {
        let err = |r: Result<Option<PaddedGather>>| r.err().unwrap().to_string();
        assert!(err(PaddedGather::plan("g", 0, 3, b"a", &[1, 1], &[0; 2]))
            .contains("g: 2 counts for 3 ranks"));
        assert!(err(PaddedGather::plan("g", 1, 2, b"a", &[1, 2], &[0; 3]))
            .contains("g: rank 1 sends 1 bytes, counts say 2"));
        assert!(PaddedGather::plan("g", 0, 2, b"", &[0, 0], &[])
            .unwrap()
            .is_none());
        assert!(check_broadcast_root(2, 2)
            .unwrap_err()
            .to_string()
            .contains("broadcast root 2 of 2 ranks"));
        assert!(check_broadcast_root(1, 2).is_ok());
    }
}
