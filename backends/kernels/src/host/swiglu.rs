//! `out = A(silu(g)·u)`, one work-item per element.
use concord_core::Result;
use concord_ops::TensorArg;

use super::{Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (g, u, out) = (&ins[0], &ins[1], &outs[0]);
    let n = out.desc.numel();
    let args = Args::new().act(cx, g)?.act(cx, u)?.act(cx, out)?.u64(n);
    cx.run("swiglu", n, &args)
}
