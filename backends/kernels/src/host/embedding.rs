//! `out[t] = A(table[ids[t]])`; an id ≥ V is reported at the next read or synchronize.
use concord_core::Result;
use concord_ops::TensorArg;

use super::{Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (ids, table, out) = (&ins[0], &ins[1], &outs[0]);
    let t = ids.desc.shape[0];
    let (v, h) = (table.desc.shape[0], table.desc.shape[1]);
    let args = Args::new()
        .tensor(cx, ids)?
        .act(cx, table)?
        .act(cx, out)?
        .dim(t)?
        .dim(v)?
        .dim(h)?
        .status(cx);
    cx.run("embedding", t * h, &args)
}
