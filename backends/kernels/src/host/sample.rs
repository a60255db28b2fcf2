//! Next-token choice, one work-item per row over scratch values, order and probabilities
//! [B, V] (only allocated when the op is not greedy by its temperature).
use concord_core::Result;
use concord_ops::{Sample, TensorArg};

use super::{f32s, Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &Sample,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (logits, uniform, ids) = (&ins[0], &ins[1], &outs[0]);
    let (b, v) = (logits.desc.shape[0], logits.desc.shape[1]);
    let cells = if op.is_greedy() { 1 } else { b * v };
    let vals = cx.scratch(f32s(cells))?;
    let order = cx.scratch(f32s(cells))?;
    let probs = cx.scratch(f32s(cells))?;
    let args = Args::new()
        .tensor(cx, logits)?
        .tensor(cx, uniform)?
        .tensor(cx, ids)?
        .mem(&vals)
        .mem(&order)
        .mem(&probs)
        .dim(b)?
        .dim(v)?
        .dim(op.valid_vocab)?
        .f32(op.temperature)
        .u32(op.top_k.min(u32::MAX as usize) as u32)
        .f32(op.top_p)
        .f32(op.min_p);
    cx.run("sample", b, &args)
}
