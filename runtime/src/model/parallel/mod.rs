//! Expert and tensor parallelism across the ranks of a [`Communicator`], bit-identical to one
//! rank (docs/architecture.md "Parallel layouts", docs/numerics.md §"Parallel layouts").
//!
//! Every output element is computed whole on one rank and then gathered as bytes: no sum ever
//! crosses ranks, so the contract's reduction order (canonical dots over all of K, the MoE
//! combine in slot order) is the same for every layout. Tensor parallelism therefore splits
//! each matmul on its output dimension only (never a row-parallel partial dot plus all-reduce),
//! and expert parallelism computes each (token, slot) expert output on the rank that holds the
//! expert, gathers them all, and runs the combine replicated on every rank.

mod experts;
mod layout;
mod tensor;

pub use layout::ParallelLayout;
pub(crate) use layout::Shard;
pub(crate) use tensor::{slice_rows, RowSplit};
