//! Concord ops: the closed catalogue of DeepSeek-V3 ops and the `Backend` trait that runs them.
//!
//! Model code builds [`Op`] values (typed parameters, one-line contracts, shape inference) and
//! hands them to a [`Backend`] with [`TensorArg`] views of [`Buffer`]s. A backend never sees the
//! model, and model code never names a vendor. The exact semantics of every op are written in
//! docs/numerics.md; the CPU backend is their reference implementation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod buffer;
pub mod catalogue;
mod launch_check;
mod mode;
mod op;
mod tensor;

pub use backend::{Backend, BackendInfo, DeviceMemory, Prepared, Support};
pub use buffer::{Buffer, DeviceStorage};
pub use catalogue::*;
pub use launch_check::check_launch;
pub use mode::KernelMode;
pub use op::{Op, OpKind};
pub use tensor::{TensorArg, TensorDesc};
