//! One file per op of the catalogue: the reference kernel under the numerics contract.
//!
//! Each `run` receives views already checked against `Op::infer` (dtypes, shapes, bounds,
//! no output aliasing an input); it checks only what depends on the data (ids, positions).
use concord_core::Result;
use concord_ops::Op;

use crate::storage::{In, Out};

mod add;
mod attention_lanes;
mod block_fp8_matmul;
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

/// Runs `op` on checked views.
pub(crate) fn run(op: &Op, ins: &[In], outs: &mut [Out]) -> Result<()> {
    match op {
        Op::Embedding(p) => embedding::run(p, ins, outs),
        Op::RmsNorm(p) => rms_norm::run(p, ins, outs),
        Op::Matmul(p) => matmul::run(p, ins, outs),
        Op::Fp8ActQuant(p) => fp8_act_quant::run(p, ins, outs),
        Op::BlockFp8Matmul(p) => block_fp8_matmul::run(p, ins, outs),
        Op::Rope(p) => rope::run(p, ins, outs),
        Op::MlaPrefill(p) => mla_prefill::run(p, ins, outs),
        Op::MlaDecode(p) => mla_decode::run(p, ins, outs),
        Op::MoeRoute(p) => moe_route::run(p, ins, outs),
        Op::MoeExperts(p) => moe_experts::run(p, ins, outs),
        Op::Swiglu(p) => swiglu::run(p, ins, outs),
        Op::Add(p) => add::run(p, ins, outs),
        Op::SliceColumns(p) => slice_columns::run(p, ins, outs),
        Op::ScatterRows(p) => scatter_rows::run(p, ins, outs),
        Op::GatherRows(p) => gather_rows::run(p, ins, outs),
        Op::Penalize(p) => penalize::run(p, ins, outs),
        Op::Sample(p) => sample::run(p, ins, outs),
    }
}

pub(crate) use fp8_act_quant::{block_amax, block_scale, quantize_row};

/// Elements below which a row-wise op runs as one task on the calling thread: splitting a
/// few small rows costs a fork, a join and perhaps a sleeping worker's wake-up, more than the
/// work (a speculative verification's 4 rows of 128 on the demo). Each row is computed by the
/// same code either way, so the bits do not change.
const SERIAL_ELEMENTS: usize = 1 << 14;

/// The `with_min_len` for `rows` parallel rows of `width` elements each: every row in one
/// task (no split) when the op is smaller than [`SERIAL_ELEMENTS`], else any split.
pub(crate) fn min_rows(rows: usize, width: usize) -> usize {
    if rows.saturating_mul(width) < SERIAL_ELEMENTS {
        usize::MAX
    } else {
        1
    }
}
