//! The NCCL/RCCL transport on the stand-in library (comm/standin/nccl_standin.c: ranks as
//! threads, host memory as device memory): the collectives' self-check, every collective
//! byte for byte against the in-process group, and the failures — a rank that never joins, a
//! rank that leaves, ranks whose calls disagree — as errors on the others, not hangs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use concord_comm::nccl::{Flavour, NcclCommunicator, NcclLibrary};
use concord_comm::staging::{DeviceStaging, HostStaging};
use concord_comm::standin;

mod common;
use common::transport;

fn library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        standin::build(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("nccl-standin"))
            .unwrap_or_else(|e| panic!("the NCCL stand-in: {e}"))
    })
}

/// A `size`-rank NCCL group on the stand-in.
fn nccl_ranks(size: usize, timeout: Duration) -> Vec<NcclCommunicator> {
    standin::ranks(library(), size, timeout).expect("the stand-in ranks join")
}

#[test]
fn the_self_check_passes_on_2_3_and_4_ranks() {
    transport::self_check_passes(nccl_ranks);
}

#[test]
fn every_collective_matches_the_in_process_group_byte_for_byte() {
    transport::matches_the_in_process_group(nccl_ranks);
}

#[test]
fn a_rank_that_never_joins_times_out_the_others() {
    let lib = Arc::new(NcclLibrary::open_first(&[library().to_path_buf()]).unwrap());
    let id = lib.unique_id().unwrap();
    transport::a_rank_that_never_joins_times_out_the_others(
        |rank, timeout| {
            let staging: Arc<dyn DeviceStaging> = Arc::new(HostStaging::new());
            NcclCommunicator::join(
                Arc::clone(&lib),
                Flavour::Nccl,
                &id,
                rank,
                3,
                staging,
                timeout,
            )
        },
        "",
        "ncclCommInitRank",
    );
}

#[test]
fn a_rank_that_leaves_fails_the_others_with_a_timeout_and_aborts() {
    // Rank 1 leaves (ncclCommDestroy) without taking part.
    transport::a_rank_that_leaves_fails_the_others(
        nccl_ranks(2, Duration::from_millis(500)),
        "the communicator was aborted",
    );
}

#[test]
fn ranks_whose_calls_disagree_get_the_asynchronous_error() {
    // The stand-in reports differing padded parts as ncclInvalidUsage (5) through
    // ncclCommGetAsyncError.
    transport::ranks_whose_calls_disagree_get_the_asynchronous_error(
        nccl_ranks,
        "the communicator reports ncclResult_t 5",
    );
}
