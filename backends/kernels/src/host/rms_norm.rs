//! Per row: `r = 1/sqrt(canonical Σx² / d + eps)` (one work-item per row), then
//! `out = A(w·A(x·r))` (one per element).
use concord_core::Result;
use concord_ops::{RmsNorm, TensorArg};

use super::{f32s, Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &RmsNorm,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (x, w, out) = (&ins[0], &ins[1], &outs[0]);
    let (rows, d) = (x.desc.shape[0], x.desc.shape[1]);
    if d == 0 || rows == 0 {
        return Ok(());
    }
    let r = cx.scratch(f32s(rows))?;
    let scale = Args::new()
        .act(cx, x)?
        .mem(&r)
        .dim(rows)?
        .dim(d)?
        .f32(op.eps);
    cx.run("rms_norm_scale", rows, &scale)?;
    let apply = Args::new()
        .act(cx, x)?
        .act(cx, w)?
        .mem(&r)
        .act(cx, out)?
        .dim(rows)?
        .dim(d)?;
    cx.run("rms_norm_apply", rows * d, &apply)
}
