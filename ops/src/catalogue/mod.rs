//! One file per op: typed parameters, the one-line contract, shape inference.
//!
//! "A" below is the activation dtype of the op's `out` parameter: F32 (no rounding) or BF16
//! (round to nearest even). Exact rounding points and reduction orders: docs/numerics.md.
// Shapes are written `[T, H]` in the contracts; they are notation, not intra-doc links.
#![allow(rustdoc::broken_intra_doc_links)]

mod add;
mod block_fp8_matmul;
mod check;
mod embedding;
mod fp8_act_quant;
mod gather_rows;
mod matmul;
mod mla_decode;
mod mla_prefill;
mod moe_experts;
mod moe_route;
mod penalize;
mod rms_norm;
mod rope;
mod sample;
mod scatter_rows;
mod slice_columns;
mod swiglu;

pub use add::Add;
pub use block_fp8_matmul::BlockFp8Matmul;
pub use concord_core::ActScaleFormat;
pub use embedding::Embedding;
pub use fp8_act_quant::{Fp8ActQuant, FP8_ACT_BLOCK};
pub use gather_rows::GatherRows;
pub use matmul::Matmul;
pub use mla_decode::MlaDecode;
pub use mla_prefill::MlaPrefill;
pub use moe_experts::{ExpertWeights, MoeExperts};
pub use moe_route::{MoeRoute, RouterMethod, RouterScoring};
pub use penalize::Penalize;
pub use rms_norm::RmsNorm;
pub use rope::Rope;
pub use sample::Sample;
pub use scatter_rows::ScatterRows;
pub use slice_columns::SliceColumns;
pub use swiglu::Swiglu;
