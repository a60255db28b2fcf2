//! Which transport a launched rank uses: NCCL for the CUDA backend, RCCL for ROCm, HCCL for
//! Ascend, MPI otherwise, overridden by `CONCORD_COMM=mpi|nccl|rccl|hccl`. A device transport is bootstrapped over MPI (rank 0's
//! unique id broadcast to the others) on the device of the process's local rank.
//!
//! A vendor library that is missing is an error naming it and the paths tried, never a
//! silent fall-back to MPI: a cluster that lost its NCCL would otherwise run on, slower, with
//! nobody told. `CONCORD_COMM=mpi` is the explicit way to exchange through host memory.

use std::sync::Arc;
use std::time::Duration;

use concord_core::{Error, Result};

use crate::communicator::Communicator;
use crate::hccl::HcclCommunicator;
use crate::launch::{launched_ranks, open_mpi, timeout_from_env};
use crate::local::SingleRank;
use crate::nccl::{load_library, Flavour, NcclCommunicator};
use crate::staging::{AclStaging, CudaStaging, DeviceStaging, HipStaging};

/// The variable that picks the transport.
pub const COMM_ENV: &str = "CONCORD_COMM";

/// The variables that give this process's rank among those on its node, in the order read:
/// Concord's own override, Open MPI's, MPICH/Intel MPI's (Hydra), Slurm's.
pub const LOCAL_RANK_VARS: [&str; 4] = [
    "CONCORD_LOCAL_RANK",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "MPI_LOCALRANKID",
    "SLURM_LOCALID",
];

/// A transport of collectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The system's MPI, host memory.
    Mpi,
    /// NCCL on CUDA device memory.
    Nccl,
    /// RCCL on HIP device memory.
    Rccl,
    /// HCCL on Ascend device memory.
    Hccl,
}

impl Transport {
    /// `$CONCORD_COMM` when set, else the transport of `backend`'s vendor (`cuda` → NCCL,
    /// `rocm` → RCCL, `ascend` → HCCL, anything else → MPI).
    pub fn choose(backend: &str) -> Result<Transport> {
        match std::env::var(COMM_ENV) {
            Ok(text) => Transport::choose_from(Some(&text), backend),
            Err(std::env::VarError::NotPresent) => Transport::choose_from(None, backend),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(Error::invalid(format!("{COMM_ENV} is not valid UTF-8")))
            }
        }
    }

    /// [`choose`](Transport::choose) with the variable's value given.
    fn choose_from(setting: Option<&str>, backend: &str) -> Result<Transport> {
        match setting {
            Some(text) => Transport::parse(text),
            None => Ok(match backend {
                "cuda" => Transport::Nccl,
                "rocm" => Transport::Rccl,
                "ascend" => Transport::Hccl,
                _ => Transport::Mpi,
            }),
        }
    }

    fn parse(text: &str) -> Result<Transport> {
        match text.trim().to_ascii_lowercase().as_str() {
            "mpi" => Ok(Transport::Mpi),
            "nccl" => Ok(Transport::Nccl),
            "rccl" => Ok(Transport::Rccl),
            "hccl" => Ok(Transport::Hccl),
            _ => Err(Error::invalid(format!(
                "{COMM_ENV}={text:?}: expected mpi, nccl, rccl or hccl"
            ))),
        }
    }
}

/// This process's rank on its node, from [`LOCAL_RANK_VARS`].
pub fn local_rank() -> Result<usize> {
    for var in LOCAL_RANK_VARS {
        if let Ok(text) = std::env::var(var) {
            return text.trim().parse().map_err(|_| {
                Error::invalid(format!("{var}={text:?}: expected a local rank (0, 1, …)"))
            });
        }
    }
    Err(Error::invalid(format!(
        "a device communicator runs one process per device, on the device of the process's \
         local rank, and none of {} is set; set CONCORD_LOCAL_RANK",
        LOCAL_RANK_VARS.join(", ")
    )))
}

/// The communicator of a process running `backend` (`cpu`, `cuda`, `rocm`, …; `""` when
/// unknown): [`SingleRank`]
/// alone, otherwise the transport of [`Transport::choose`] over the launcher's ranks.
/// Collectives wait `timeout` (or `$CONCORD_COMM_TIMEOUT` seconds).
pub fn for_backend(backend: &str, timeout: Duration) -> Result<Box<dyn Communicator>> {
    let timeout = timeout_from_env(timeout)?;
    let Some((rank, size)) = launched_ranks().filter(|&(_, size)| size > 1) else {
        return Ok(Box::new(SingleRank));
    };
    let transport = Transport::choose(backend)?;
    let mpi = open_mpi(rank, size, timeout)?;
    let comm: Box<dyn Communicator> = match transport {
        Transport::Mpi => return Ok(Box::new(mpi)),
        Transport::Nccl => Box::new(nccl_like(Flavour::Nccl, &mpi, timeout)?),
        Transport::Rccl => Box::new(nccl_like(Flavour::Rccl, &mpi, timeout)?),
        Transport::Hccl => {
            let library = crate::hccl::load_library(&crate::hccl::candidates()).map_err(hint)?;
            let staging: Arc<dyn DeviceStaging> =
                Arc::new(AclStaging::open(local_rank()?).map_err(hint)?);
            Box::new(HcclCommunicator::bootstrap(
                library, &mpi, staging, timeout,
            )?)
        }
    };
    tracing::info!(rank, size, "collectives over {}", comm.describe());
    Ok(comm)
}

/// NCCL or RCCL on the device of this process's local rank, bootstrapped over `mpi`.
fn nccl_like(
    flavour: Flavour,
    mpi: &dyn Communicator,
    timeout: Duration,
) -> Result<NcclCommunicator> {
    let library = load_library(flavour, &flavour.candidates()).map_err(hint)?;
    let device = local_rank()?;
    let staging: Arc<dyn DeviceStaging> = match flavour {
        Flavour::Nccl => Arc::new(CudaStaging::open(device).map_err(hint)?),
        Flavour::Rccl => Arc::new(HipStaging::open(device).map_err(hint)?),
    };
    NcclCommunicator::bootstrap(library, flavour, mpi, staging, timeout)
}

/// A missing vendor library's error, with the way to run over MPI instead.
fn hint(e: Error) -> Error {
    match e {
        Error::Unavailable { backend, reason } => Error::Unavailable {
            backend,
            reason: format!(
                "{reason}; set {COMM_ENV}=mpi to exchange through host memory over MPI instead"
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse_by_name_and_reject_others() {
        assert_eq!(Transport::parse("nccl").unwrap(), Transport::Nccl);
        assert_eq!(Transport::parse(" RCCL ").unwrap(), Transport::Rccl);
        assert_eq!(Transport::parse("mpi").unwrap(), Transport::Mpi);
        assert_eq!(Transport::parse("hccl").unwrap(), Transport::Hccl);
        let err = Transport::parse("gloo").unwrap_err().to_string();
        assert!(err.contains("CONCORD_COMM=\"gloo\""), "{err}");
    }

    #[test]
    fn each_backend_gets_its_vendors_transport_unless_overridden() {
        let pick = |setting, backend| Transport::choose_from(setting, backend).unwrap();
        assert_eq!(pick(None, "cuda"), Transport::Nccl);
        assert_eq!(pick(None, "rocm"), Transport::Rccl);
        assert_eq!(pick(None, "ascend"), Transport::Hccl);
        assert_eq!(pick(Some("hccl"), "cpu"), Transport::Hccl);
        assert_eq!(pick(None, "cpu"), Transport::Mpi);
        assert_eq!(pick(None, "opencl"), Transport::Mpi);
        assert_eq!(pick(Some("mpi"), "cuda"), Transport::Mpi);
        assert_eq!(pick(Some("rccl"), "cpu"), Transport::Rccl);
        let err = Transport::choose_from(Some("x"), "cuda")
            .unwrap_err()
            .to_string();
        assert!(err.contains("CONCORD_COMM=\"x\""), "{err}");
    }
}
