//! What the device transports' stand-in tests share: every collective exercised on data that
//! differs per rank and call, and the in-process group that is the reference.

use std::time::Duration;

use concord_comm::{Communicator, InProcessGroup};

/// Runs `f` on every rank of a `size`-rank in-process group.
pub fn on_in_process<T: Send>(size: usize, f: impl Fn(&dyn Communicator) -> T + Sync) -> Vec<T> {
    let ranks = InProcessGroup::ranks(size, Duration::from_secs(30)).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = ranks
            .iter()
            .map(|c| scope.spawn(|| f(c as &dyn Communicator)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Every collective on data that differs per rank and per call; each rank's results as
/// bytes, in call order.
pub fn exercise(comm: &dyn Communicator) -> Vec<Vec<u8>> {
    let (rank, size) = (comm.rank(), comm.size());
    let fill = |seed: usize, n: usize| -> Vec<u8> {
        (0..n).map(|i| (seed * 37 + i * 11 + 5) as u8).collect()
    };
    let mut out = Vec::new();
    for call in 0..3 {
        // Uneven parts, some empty, the largest not on rank 0 (the padding path).
        let counts: Vec<usize> = (0..size).map(|r| (r * 5 + call * 3) % 7).collect();
        let mut recv = vec![0; counts.iter().sum()];
        comm.all_gather_v(&fill(rank + call * 10, counts[rank]), &counts, &mut recv)
            .unwrap();
        out.push(recv);
        let part = |from: usize, to: usize| (from * 3 + to * 2 + call) % 5;
        let send_counts: Vec<usize> = (0..size).map(|q| part(rank, q)).collect();
        let recv_counts: Vec<usize> = (0..size).map(|r| part(r, rank)).collect();
        let send = fill(rank * 7 + call, send_counts.iter().sum());
        let mut recv = vec![0; recv_counts.iter().sum()];
        comm.all_to_all_v(&send, &send_counts, &mut recv, &recv_counts)
            .unwrap();
        out.push(recv);
        let mut buf = fill(rank + 100 * call, 13);
        comm.broadcast(&mut buf, (call + 1) % size).unwrap();
        out.push(buf);
        let mut data: Vec<f32> = (0..9)
            .map(|i| ((rank * 9 + i) as f32).sin() * 1e3)
            .collect();
        comm.all_reduce_sum_f32(&mut data).unwrap();
        out.push(data.iter().flat_map(|v| v.to_le_bytes()).collect());
        comm.barrier().unwrap();
    }
    out
}

/// The test bodies the NCCL and HCCL stand-in tests share, parameterised by how a transport's
/// ranks join and by the texts that differ between the libraries.
pub mod transport {
    use std::time::{Duration, Instant};

    use concord_comm::{check_collectives, Communicator};

    use super::{exercise, on_in_process};

    /// Runs `f` on every one of `ranks`, one thread per rank.
    pub fn on_ranks<C: Sync, T: Send>(ranks: &[C], f: impl Fn(&C) -> T + Sync) -> Vec<T> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = ranks.iter().map(|c| scope.spawn(|| f(c))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    /// The collectives' self-check on 2, 3 and 4 ranks made by `ranks(size, timeout)`.
    pub fn self_check_passes<C: Communicator + Sync>(ranks: impl Fn(usize, Duration) -> Vec<C>) {
        for size in 2..=4 {
            let group = ranks(size, Duration::from_secs(30));
            let outcomes = on_ranks(&group, |c| check_collectives(c));
            for (rank, outcome) in outcomes.into_iter().enumerate() {
                outcome.unwrap_or_else(|e| panic!("{size} ranks, rank {rank}: {e}"));
            }
        }
    }

    /// Every collective on 2, 3 and 4 ranks, byte for byte against the in-process group.
    pub fn matches_the_in_process_group<C: Communicator + Sync>(
        ranks: impl Fn(usize, Duration) -> Vec<C>,
    ) {
        for size in [2, 3, 4] {
            let want = on_in_process(size, exercise);
            let group = ranks(size, Duration::from_secs(30));
            let got = on_ranks(&group, |c| exercise(c));
            assert_eq!(got, want, "{size} ranks");
        }
    }

    /// Ranks 0 and 1 of 3 join with a 0.5 s timeout (`join(rank, timeout)`); rank 2 never
    /// does. Each must fail within 5 s with `{prefix}rank R of 3` and `{init_call} timed out
    /// after 0.5 s`, naming the timeout's variable.
    pub fn a_rank_that_never_joins_times_out_the_others<C>(
        join: impl Fn(usize, Duration) -> concord_core::Result<C> + Sync,
        prefix: &str,
        init_call: &str,
    ) {
        let timeout = Duration::from_millis(500);
        let started = Instant::now();
        let errors: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|rank| {
                    let join = &join;
                    scope.spawn(move || match join(rank, timeout) {
                        Ok(_) => "joined".to_string(),
                        Err(e) => e.to_string(),
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (rank, e) in errors.iter().enumerate() {
            assert!(
                e.contains(&format!("{prefix}rank {rank} of 3"))
                    && e.contains(&format!("{init_call} timed out after 0.5 s"))
                    && e.contains("CONCORD_COMM_TIMEOUT"),
                "{e}"
            );
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// Of two ranks joined with a 0.5 s timeout, rank 1 leaves without taking part: rank 0's
    /// barrier times out within 5 s (its error containing `failure_note`), and every later
    /// collective fails at once, naming the first failure.
    pub fn a_rank_that_leaves_fails_the_others<C: Communicator>(
        mut ranks: Vec<C>,
        failure_note: &str,
    ) {
        drop(ranks.pop());
        let rank0 = &ranks[0];
        let started = Instant::now();
        let err = rank0.barrier().unwrap_err().to_string();
        assert!(
            err.contains("rank 0 of 2: barrier: timed out after 0.5 s")
                && err.contains(failure_note),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let started = Instant::now();
        let err = rank0.broadcast(&mut [1, 2], 0).unwrap_err().to_string();
        assert!(
            err.contains("not started: an earlier collective failed (barrier: timed out"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    /// Two ranks disagree on rank 1's count (3 bytes or 4), so the padded parts differ: each
    /// must get `reported` (the library's asynchronous error) from the stand-in well before
    /// the 20 s timeout.
    pub fn ranks_whose_calls_disagree_get_the_asynchronous_error<C: Communicator + Sync>(
        ranks: impl Fn(usize, Duration) -> Vec<C>,
        reported: &str,
    ) {
        let timeout = Duration::from_secs(20);
        let started = Instant::now();
        let group = ranks(2, timeout);
        let errors = on_ranks(&group, |c| {
            let counts = [2, 3 + c.rank()];
            let mut recv = vec![0; counts.iter().sum()];
            c.all_gather_v(&vec![7; counts[c.rank()]], &counts, &mut recv)
                .unwrap_err()
                .to_string()
        });
        for e in &errors {
            assert!(
                e.contains(&format!("all_gather_v: {reported}")) && e.contains("(stand-in)"),
                "{e}"
            );
        }
        assert!(started.elapsed() < timeout / 2, "waited for the timeout");
    }
}
