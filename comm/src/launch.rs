//! Which communicator a process gets: one rank, or the MPI job it was launched into.

use std::time::Duration;

use concord_core::{Error, Result};

use crate::communicator::Communicator;
use crate::local::SingleRank;

/// How long a collective waits for the other ranks before every rank fails with an error.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// `(rank, size)` when a launcher (`mpirun`/`mpiexec` of Open MPI or MPICH) started this
/// process as one of several ranks, from the variables the launchers set.
pub fn launched_ranks() -> Option<(usize, usize)> {
    const PAIRS: [(&str, &str); 3] = [
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
        ("PMI_RANK", "PMI_SIZE"),
        ("PMIX_RANK", "PMIX_SIZE"),
    ];
    PAIRS.iter().find_map(|(rank, size)| {
        let rank = std::env::var(rank).ok()?.parse().ok()?;
        let size = std::env::var(size).ok()?.parse().ok()?;
        Some((rank, size))
    })
}

/// The communicator of this process: [`SingleRank`] when it was started on its own (or as a
/// job of one rank), otherwise the MPI job it belongs to.
pub fn from_environment(timeout: Duration) -> Result<Box<dyn Communicator>> {
    let _ = timeout;
    match launched_ranks() {
        None | Some((_, 1)) => Ok(Box::new(SingleRank)),
        Some((rank, size)) => Err(Error::Unavailable {
            backend: "mpi".into(),
            reason: format!(
                "this process is rank {rank} of {size} of an MPI job, and the MPI transport is not built yet"
            ),
        }),
    }
}
