//! Interleaved-pair rotation, one work-item per pair; a position past the table is reported at
//! the next read or synchronize.
use concord_core::Result;
use concord_ops::{Rope, TensorArg};

use super::{Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &Rope,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (x, cos, sin, pos, out) = (&ins[0], &ins[1], &ins[2], &ins[3], &outs[0]);
    let (t, h, w) = (x.desc.shape[0], x.desc.shape[1], x.desc.shape[2]);
    let args = Args::new()
        .act(cx, x)?
        .tensor(cx, cos)?
        .tensor(cx, sin)?
        .tensor(cx, pos)?
        .act(cx, out)?
        .dim(t)?
        .dim(h)?
        .dim(w)?
        .dim(op.offset)?
        .dim(op.dim)?
        .dim(cos.desc.shape[0])?
        .status(cx);
    cx.run("rope", t * h * (op.dim / 2), &args)
}
