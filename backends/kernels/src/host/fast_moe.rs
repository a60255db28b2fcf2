//! Fast mode: the routed experts' Dense BF16 projections as grouped GEMMs on the work-group
//! tiles (`ops/fast/moe_experts.c`, common/tile_gemm.h): one group per (expert, 64 output
//! columns) gathers the slots routed to its expert in slot order, 16 at a time, so a slot's
//! result never depends on the other slots. The combine is the exact kernel. Anything but
//! BF16 x, weights and output (F32, BlockFp8) runs the exact kernels, which the fast program
//! also holds.
use concord_core::{DType, Result};
use concord_ops::{ExpertWeights, MoeExperts, TensorArg};

use super::fast_tiles::{TILE_GROUP, TILE_N};
use super::{f32s, moe_experts as exact, Args, Cx, KernelDevice};

/// `TILE_N`-column tiles across `cols`, at least one (`moe_tiles` in the kernel file).
fn tiles(cols: usize) -> usize {
    cols.div_ceil(TILE_N).max(1)
}

/// Routed experts: BF16 Dense weights on the tiles, anything else exactly.
pub(super) fn moe_experts<D: KernelDevice>(
    cx: &Cx<D>,
    op: &MoeExperts,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let bf16 = |t: &TensorArg| t.desc.dtype == DType::BF16;
    let tiled = op.weights == ExpertWeights::Dense
        && op.out == DType::BF16
        && [&ins[0], &ins[3], &ins[4], &ins[5]].into_iter().all(bf16);
    if !tiled {
        return exact::launch(cx, op, ins, outs);
    }
    let (x, ids, weights, out) = (&ins[0], &ins[1], &ins[2], &outs[0]);
    let (gate, up, down) = (&ins[3], &ins[4], &ins[5]);
    let (t, h) = (x.desc.shape[0], x.desc.shape[1]);
    let k = ids.desc.shape[1];
    let (e, i) = (gate.desc.shape[0], gate.desc.shape[1]);
    if t == 0 || h == 0 || k == 0 {
        return Ok(());
    }
    let slots = t * k;
    let hid = cx.scratch(f32s(slots * i))?;
    let eo = cx.scratch(f32s(slots * h))?;
    // At least one group, so that group 0 checks the ids even with no experts.
    let a = Args::new()
        .tensor(cx, x)?
        .tensor(cx, ids)?
        .tensor(cx, gate)?
        .tensor(cx, up)?
        .mem(&hid)
        .dtype(op.out)?
        .dim(slots)?
        .dim(k)?
        .dim(e)?
        .dim(h)?
        .dim(i)?
        .status(cx);
    cx.run_groups(
        "moe_experts_gate_up_fast",
        e.max(1) * tiles(i),
        TILE_GROUP,
        &a,
    )?;
    let a = Args::new()
        .mem(&hid)
        .tensor(cx, ids)?
        .tensor(cx, down)?
        .mem(&eo)
        .dtype(op.out)?
        .dim(slots)?
        .dim(e)?
        .dim(h)?
        .dim(i)?;
    cx.run_groups("moe_experts_down_fast", e * tiles(h), TILE_GROUP, &a)?;
    exact::combine(cx, &eo, weights, out)
}
