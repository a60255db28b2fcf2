//! Which communicator a process gets: one rank, or the MPI job it was launched into.

use std::time::Duration;

use concord_core::{Error, Result};

use crate::communicator::Communicator;
use crate::mpi::MpiCommunicator;

/// How long a collective waits for the other ranks before every rank fails with an error.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The variable that overrides a communicator's collective timeout, in seconds.
pub const TIMEOUT_ENV: &str = "CONCORD_COMM_TIMEOUT";

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

/// `timeout`, or `$CONCORD_COMM_TIMEOUT` seconds when that is set (a positive number; a
/// fraction is allowed).
pub fn timeout_from_env(timeout: Duration) -> Result<Duration> {
    match std::env::var(TIMEOUT_ENV) {
        Ok(text) => parse_timeout(&text),
        Err(std::env::VarError::NotPresent) => Ok(timeout),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::invalid(format!("{TIMEOUT_ENV} is not valid UTF-8")))
        }
    }
}

fn parse_timeout(text: &str) -> Result<Duration> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            Error::invalid(format!(
                "{TIMEOUT_ENV}={text:?}: expected a positive number of seconds"
            ))
        })
}

/// The communicator of this process when its backend is not known: [`SingleRank`](crate::SingleRank) when it
/// was started on its own (or as a job of one rank), otherwise the MPI job it belongs to, on
/// the system's MPI library ([`Error::Unavailable`] naming each library tried when there is
/// none) — or the transport `$CONCORD_COMM` names (see [`crate::for_backend`]). Collectives
/// wait `timeout` (or `$CONCORD_COMM_TIMEOUT` seconds) for the other ranks.
pub fn from_environment(timeout: Duration) -> Result<Box<dyn Communicator>> {
    crate::select::for_backend("", timeout)
}

/// MPI's world as rank `rank` of `size` (what the launcher said), checked against what MPI
/// says.
pub(crate) fn open_mpi(rank: usize, size: usize, timeout: Duration) -> Result<MpiCommunicator> {
    let mpi = MpiCommunicator::world(timeout).map_err(|e| match e {
        Error::Unavailable { backend, reason } => Error::Unavailable {
            backend,
            reason: format!("this process is rank {rank} of {size} of an MPI job, and {reason}"),
        },
        other => other,
    })?;
    if (mpi.rank(), mpi.size()) != (rank, size) {
        return Err(Error::Backend {
            backend: "mpi".into(),
            message: format!(
                "the launcher says rank {rank} of {size}, but {} says rank {} of {} — \
                 was the job started by a launcher of another MPI than the one loaded?",
                mpi.describe(),
                mpi.rank(),
                mpi.size()
            ),
        });
    }
    Ok(mpi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_positive_seconds() {
        assert_eq!(parse_timeout("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_timeout(" 30 ").unwrap(), Duration::from_secs(30));
        for bad in ["0", "-1", "soon", "", "inf", "NaN"] {
            let err = parse_timeout(bad).unwrap_err().to_string();
            assert!(err.contains(TIMEOUT_ENV), "{bad}: {err}");
        }
    }
}
