//! The penalties: a copy of the logits (one work-item per element), then each row's entries
//! in order (one work-item per row).
use concord_core::Result;
use concord_ops::{Penalize, TensorArg};

use super::{Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &Penalize,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (logits, seen, out) = (&ins[0], &ins[1], &outs[0]);
    let (b, v) = (logits.desc.shape[0], logits.desc.shape[1]);
    let k = seen.desc.shape[1];
    if b * v == 0 {
        return Ok(());
    }
    let copy = Args::new().tensor(cx, logits)?.tensor(cx, out)?.u64(b * v);
    cx.run("penalize_copy", b * v, &copy)?;
    if k == 0 {
        return Ok(());
    }
    let apply = Args::new()
        .tensor(cx, seen)?
        .tensor(cx, out)?
        .dim(b)?
        .dim(v)?
        .dim(k)?
        .f32(op.repetition)
        .f32(op.frequency)
        .f32(op.presence);
    cx.run("penalize_apply", b, &apply)
}
