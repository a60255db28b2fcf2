//! `y[m, n] = A(dot(x[m, :], w[n, :]))`, one work-item per output element.
use concord_core::Result;
use concord_ops::TensorArg;

use super::{Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (args, m, n) = args(cx, ins, outs)?;
    cx.run("matmul", m * n, &args)
}

/// The argument list `matmul` and `matmul_fast_bf16` share, with M and N.
pub(super) fn args<'a, D: KernelDevice>(
    cx: &Cx<'a, D>,
    ins: &[TensorArg<'a>],
    outs: &[TensorArg<'a>],
) -> Result<(Args<'a, D::Mem>, usize, usize)> {
    let (x, w, out) = (&ins[0], &ins[1], &outs[0]);
    let (m, k) = (x.desc.shape[0], x.desc.shape[1]);
    let n = w.desc.shape[0];
    let args = Args::new()
        .act(cx, x)?
        .act(cx, w)?
        .act(cx, out)?
        .dim(m)?
        .dim(n)?
        .dim(k)?;
    Ok((args, m, n))
}
