//! Collectives between the ranks of one model: the [`Communicator`] trait and its
//! implementations.
//!
//! Every collective moves bytes; arithmetic across ranks happens only in
//! [`Communicator::all_reduce_sum_f32`], whose order is fixed (rank 0 first, then rank 1, …) so
//! that a result never depends on the transport or on which rank finished first. The runtime's
//! parallel layouts avoid even that sum on the model's numbers (each output element is computed
//! whole on one rank and gathered), which is what keeps their bits identical to one device.
//!
//! Transports: [`SingleRank`], [`InProcessGroup`] (threads, for tests), [`MpiCommunicator`]
//! (the system's MPI, loaded at run time), [`NcclCommunicator`] (NCCL or RCCL) and
//! [`HcclCommunicator`] (HCCL), both loaded at run time and working on device memory of a
//! [`staging::DeviceStaging`] (run on the test stand-ins only). [`for_backend`] picks one for a
//! launched rank; [`vendor::probe_all`] reports which of MPI, NCCL, RCCL and HCCL this machine
//! has.

mod check;
mod communicator;
mod device;
mod device_transport;
pub mod hccl;
mod in_process;
mod launch;
mod local;
pub mod mpi;
pub mod nccl;
mod select;
pub mod staging;
pub mod standin;
pub mod vendor;

pub use check::check_collectives;
pub use communicator::{exclusive_prefix, Communicator};
pub use device::{assign_rank_device, choose_device, DeviceChoice};
pub use hccl::HcclCommunicator;
pub use in_process::InProcessGroup;
pub use launch::{
    from_environment, launched_ranks, timeout_from_env, DEFAULT_TIMEOUT, TIMEOUT_ENV,
};
pub use local::SingleRank;
pub use mpi::MpiCommunicator;
pub use nccl::NcclCommunicator;
pub use select::{for_backend, local_rank, Transport, COMM_ENV, LOCAL_RANK_VARS};
