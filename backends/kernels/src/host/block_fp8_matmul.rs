//! `y[m,n] = A(Σ_kb (blocksum_kb · xs[m,kb]) · ws[n/bn, kb])`, one work-item per output element.
use concord_core::Result;
use concord_ops::{BlockFp8Matmul, TensorArg};

use super::{Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &BlockFp8Matmul,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (args, m, n) = args(cx, op, ins, outs)?;
    cx.run("block_fp8_matmul", m * n, &args)
}

/// The argument list `block_fp8_matmul` and `block_fp8_matmul_fast` share, with M and N.
pub(super) fn args<'a, D: KernelDevice>(
    cx: &Cx<'a, D>,
    op: &BlockFp8Matmul,
    ins: &[TensorArg<'a>],
    outs: &[TensorArg<'a>],
) -> Result<(Args<'a, D::Mem>, usize, usize)> {
    let (xq, xs, w, ws, out) = (&ins[0], &ins[1], &ins[2], &ins[3], &outs[0]);
    let (m, k) = (xq.desc.shape[0], xq.desc.shape[1]);
    let n = w.desc.shape[0];
    let args = Args::new()
        .tensor(cx, xq)?
        .tensor(cx, xs)?
        .tensor(cx, w)?
        .tensor(cx, ws)?
        .act(cx, out)?
        .dim(m)?
        .dim(n)?
        .dim(k)?
        .dim(op.block[0])?;
    Ok((args, m, n))
}
