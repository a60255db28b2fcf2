//! The NCCL/RCCL transport on the stand-in library (comm/standin/nccl_standin.c: ranks as
//! threads, host memory as device memory): the collectives' self-check, every collective
//! byte for byte against the in-process group, and the failures — a rank that never joins, a
//! rank that leaves, ranks whose calls disagree — as errors on the others, not hangs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use concord_comm::nccl::{Flavour, NcclCommunicator, NcclLibrary};
use concord_comm::staging::{DeviceStaging, HostStaging};
use concord_comm::{check_collectives, standin, Communicator};

mod common;
use common::{exercise, on_in_process};

fn library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        standin::build(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("nccl-standin"))
            .unwrap_or_else(|e| panic!("the NCCL stand-in: {e}"))
    })
}

/// Runs `f` on every rank of a `size`-rank NCCL group on the stand-in, one thread per rank.
fn on_nccl<T: Send>(
    size: usize,
    timeout: Duration,
    f: impl Fn(&NcclCommunicator) -> T + Sync,
) -> Vec<T> {
    let ranks = standin::ranks(library(), size, timeout).expect("the stand-in ranks join");
    std::thread::scope(|scope| {
        let handles: Vec<_> = ranks.iter().map(|c| scope.spawn(|| f(c))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn the_self_check_passes_on_2_3_and_4_ranks() {
    for size in 2..=4 {
        let outcomes = on_nccl(size, Duration::from_secs(30), |c| check_collectives(c));
        for (rank, outcome) in outcomes.into_iter().enumerate() {
            outcome.unwrap_or_else(|e| panic!("{size} ranks, rank {rank}: {e}"));
        }
    }
}

#[test]
fn every_collective_matches_the_in_process_group_byte_for_byte() {
    for size in [2, 3, 4] {
        let want = on_in_process(size, exercise);
        let got = on_nccl(size, Duration::from_secs(30), |c| exercise(c));
        assert_eq!(got, want, "{size} ranks");
    }
}

#[test]
fn a_rank_that_never_joins_times_out_the_others() {
    let timeout = Duration::from_millis(500);
    let lib = Arc::new(NcclLibrary::open_first(&[library().to_path_buf()]).unwrap());
    let id = lib.unique_id().unwrap();
    let started = Instant::now();
    // Ranks 0 and 1 of 3 join; rank 2 never does.
    let errors: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|rank| {
                let lib = Arc::clone(&lib);
                scope.spawn(move || {
                    let staging: Arc<dyn DeviceStaging> = Arc::new(HostStaging::new());
                    match NcclCommunicator::join(lib, Flavour::Nccl, &id, rank, 3, staging, timeout)
                    {
                        Ok(_) => "joined".to_string(),
                        Err(e) => e.to_string(),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (rank, e) in errors.iter().enumerate() {
        assert!(
            e.contains(&format!("rank {rank} of 3"))
                && e.contains("ncclCommInitRank timed out after 0.5 s")
                && e.contains("CONCORD_COMM_TIMEOUT"),
            "{e}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_rank_that_leaves_fails_the_others_with_a_timeout_and_aborts() {
    let timeout = Duration::from_millis(500);
    let mut ranks = standin::ranks(library(), 2, timeout).unwrap();
    // Rank 1 leaves (ncclCommDestroy) without taking part.
    drop(ranks.pop());
    let rank0 = &ranks[0];
    let started = Instant::now();
    let err = rank0.barrier().unwrap_err().to_string();
    assert!(
        err.contains("rank 0 of 2: barrier: timed out after 0.5 s")
            && err.contains("the communicator was aborted"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Every later collective fails at once, naming the first failure.
    let started = Instant::now();
    let err = rank0.broadcast(&mut [1, 2], 0).unwrap_err().to_string();
    assert!(
        err.contains("not started: an earlier collective failed (barrier: timed out"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[test]
fn ranks_whose_calls_disagree_get_the_asynchronous_error() {
    // The ranks disagree on rank 1's count (3 bytes or 4): the padded parts differ, which
    // the stand-in reports as ncclInvalidUsage (5) through ncclCommGetAsyncError.
    let timeout = Duration::from_secs(20);
    let started = Instant::now();
    let errors = on_nccl(2, timeout, |c| {
        let counts = [2, 3 + c.rank()];
        let mut recv = vec![0; counts.iter().sum()];
        c.all_gather_v(&vec![7; counts[c.rank()]], &counts, &mut recv)
            .unwrap_err()
            .to_string()
    });
    for e in &errors {
        assert!(
            e.contains("all_gather_v: the communicator reports ncclResult_t 5")
                && e.contains("(stand-in)"),
            "{e}"
        );
    }
    assert!(started.elapsed() < timeout / 2, "waited for the timeout");
}
