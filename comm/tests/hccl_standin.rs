//! The HCCL transport on the stand-in library (comm/standin/hccl_standin.c: ranks as threads,
//! host memory as device memory): the collectives' self-check, every collective byte for byte
//! against the in-process group on 2, 3 and 4 ranks, and the failures — a rank that never
//! joins, a rank that leaves, ranks whose calls disagree — as errors on the others, not hangs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use concord_comm::hccl::{HcclCommunicator, HcclLibrary};
use concord_comm::staging::{DeviceStaging, HostStaging};
use concord_comm::standin;

mod common;
use common::transport;

fn library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        standin::build_hccl(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("hccl-standin"))
            .unwrap_or_else(|e| panic!("the HCCL stand-in: {e}"))
    })
}

/// A `size`-rank HCCL group on the stand-in.
fn hccl_ranks(size: usize, timeout: Duration) -> Vec<HcclCommunicator> {
    standin::hccl_ranks(library(), size, timeout).expect("the stand-in ranks join")
}

#[test]
fn the_self_check_passes_on_2_3_and_4_ranks() {
    transport::self_check_passes(hccl_ranks);
}

#[test]
fn every_collective_matches_the_in_process_group_byte_for_byte() {
    transport::matches_the_in_process_group(hccl_ranks);
}

#[test]
fn a_rank_that_never_joins_times_out_the_others() {
    let lib = Arc::new(HcclLibrary::open_first(&[library().to_path_buf()]).unwrap());
    let info = lib.root_info().unwrap();
    transport::a_rank_that_never_joins_times_out_the_others(
        |rank, timeout| {
            let staging: Arc<dyn DeviceStaging> = Arc::new(HostStaging::new());
            HcclCommunicator::join(Arc::clone(&lib), &info, rank, 3, staging, timeout)
        },
        "hccl error: ",
        "HcclCommInitRootInfo",
    );
}

#[test]
fn a_rank_that_leaves_fails_the_others_with_a_timeout() {
    // Rank 1 leaves (HcclCommDestroy) without taking part.
    transport::a_rank_that_leaves_fails_the_others(
        hccl_ranks(2, Duration::from_millis(500)),
        "HCCL has no public abort",
    );
}

#[test]
fn ranks_whose_calls_disagree_get_the_asynchronous_error() {
    // The stand-in reports differing padded parts as HCCL_E_INTERNAL (4) through
    // HcclGetCommAsyncError.
    transport::ranks_whose_calls_disagree_get_the_asynchronous_error(
        hccl_ranks,
        "the communicator reports HcclResult 4",
    );
}
