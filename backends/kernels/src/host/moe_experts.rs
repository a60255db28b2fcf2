//! Routed experts: gate/up per (slot, intermediate column), down per (slot, hidden column),
//! then the weighted combine per output element; BlockFp8 weights quantize x and h first.
//! An expert id ≥ E is reported at the next read or synchronize.
use concord_core::{DType, Result};
use concord_ops::{ExpertWeights, MoeExperts, TensorArg, FP8_ACT_BLOCK};

use super::{f32s, Args, Cx, KernelDevice};
use crate::scale_fmt_code;

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &MoeExperts,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (x, ids, weights, out) = (&ins[0], &ins[1], &ins[2], &outs[0]);
    let (t, h) = (x.desc.shape[0], x.desc.shape[1]);
    let k = ids.desc.shape[1];
    let (e, i) = (ins[3].desc.shape[0], ins[3].desc.shape[1]);
    if t == 0 || h == 0 || k == 0 {
        return Ok(());
    }
    let slots = t * k;
    let hid = cx.scratch(f32s(slots * i))?;
    let eo = cx.scratch(f32s(slots * h))?;
    match op.weights {
        ExpertWeights::Dense => {
            let (gate, up, down) = (&ins[3], &ins[4], &ins[5]);
            let a = Args::new()
                .act(cx, x)?
                .tensor(cx, ids)?
                .act(cx, gate)?
                .act(cx, up)?
                .mem(&hid)
                .dtype(op.out)?
                .dim(slots)?
                .dim(k)?
                .dim(e)?
                .dim(h)?
                .dim(i)?
                .status(cx);
            cx.run("moe_experts_gate_up", slots * i, &a)?;
            let a = Args::new()
                .mem(&hid)
                .tensor(cx, ids)?
                .act(cx, down)?
                .mem(&eo)
                .dtype(op.out)?
                .dim(slots)?
                .dim(e)?
                .dim(h)?
                .dim(i)?;
            cx.run("moe_experts_down", slots * h, &a)?;
        }
        ExpertWeights::BlockFp8 { block, scale_fmt } => {
            let scale_fmt = scale_fmt_code::of(scale_fmt);
            let (gate, gate_s, up, up_s) = (&ins[3], &ins[4], &ins[5], &ins[6]);
            let (down, down_s) = (&ins[7], &ins[8]);
            let (kb_h, kb_i) = (h.div_ceil(FP8_ACT_BLOCK), i.div_ceil(FP8_ACT_BLOCK));
            let xq = cx.scratch(t * h)?;
            let xs = cx.scratch(f32s(t * kb_h))?;
            let a = Args::new()
                .act(cx, x)?
                .mem(&xq)
                .mem(&xs)
                .dim(t)?
                .dim(h)?
                .u32(scale_fmt);
            cx.run("moe_experts_quant", t * kb_h, &a)?;
            let a = Args::new()
                .mem(&xq)
                .mem(&xs)
                .tensor(cx, ids)?
                .tensor(cx, gate)?
                .tensor(cx, gate_s)?
                .tensor(cx, up)?
                .tensor(cx, up_s)?
                .mem(&hid)
                .dtype(op.out)?
                .dim(slots)?
                .dim(k)?
                .dim(e)?
                .dim(h)?
                .dim(i)?
                .dim(block[0])?
                .status(cx);
            cx.run("moe_experts_gate_up_fp8", slots * i, &a)?;
            let hq = cx.scratch(slots * i)?;
            let hs = cx.scratch(f32s(slots * kb_i))?;
            let a = Args::new()
                .mem(&hid)
                .u64(0)
                .dtype(DType::F32)?
                .mem(&hq)
                .mem(&hs)
                .dim(slots)?
                .dim(i)?
                .u32(scale_fmt);
            cx.run("moe_experts_quant", slots * kb_i, &a)?;
            let a = Args::new()
                .mem(&hq)
                .mem(&hs)
                .tensor(cx, ids)?
                .tensor(cx, down)?
                .tensor(cx, down_s)?
                .mem(&eo)
                .dtype(op.out)?
                .dim(slots)?
                .dim(e)?
                .dim(h)?
                .dim(i)?
                .dim(block[0])?;
            cx.run("moe_experts_down_fp8", slots * h, &a)?;
        }
    }
    combine(cx, &eo, weights, out)
}

/// `out = A(Σ_k w[t, k] · eo[t·K + k])`, per output element: the combine both modes run.
pub(super) fn combine<'a, D: KernelDevice>(
    cx: &Cx<'a, D>,
    eo: &'a D::Mem,
    weights: &TensorArg<'a>,
    out: &TensorArg<'a>,
) -> Result<()> {
    let (t, k) = (weights.desc.shape[0], weights.desc.shape[1]);
    let h = out.desc.shape[1];
    let a = Args::new()
        .mem(eo)
        .tensor(cx, weights)?
        .act(cx, out)?
        .dim(t)?
        .dim(k)?
        .dim(h)?;
    cx.run("moe_experts_combine", t * h, &a)
}
