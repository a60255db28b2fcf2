//! Scores per (row, key), softmax per row, output per element, over a scratch of scores
//! [T·N, S].
use concord_core::Result;
use concord_ops::{MlaPrefill, TensorArg};

use super::{f32s, Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &MlaPrefill,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (q, q_pe, kv, k_pe, pos, out) = (&ins[0], &ins[1], &ins[2], &ins[3], &ins[4], &outs[0]);
    let (t, n, q_width) = (q.desc.shape[0], q.desc.shape[1], q.desc.shape[2]);
    let rope = q_pe.desc.shape[2];
    let (keys, kv_width) = (kv.desc.shape[0], kv.desc.shape[2]);
    let dv = kv_width - op.nope_dim;
    let rows = t * n;
    if rows == 0 || dv == 0 {
        return Ok(());
    }
    let scores = cx.scratch(f32s(rows * keys))?;
    let a = Args::new()
        .act(cx, q)?
        .act(cx, q_pe)?
        .act(cx, kv)?
        .act(cx, k_pe)?
        .tensor(cx, pos)?
        .mem(&scores)
        .dim(t)?
        .dim(n)?
        .dim(q_width)?
        .dim(op.nope_dim)?
        .dim(rope)?
        .dim(kv_width)?
        .dim(keys)?
        .f32(op.scale);
    cx.run("mla_prefill_scores", rows * keys, &a)?;
    let a = Args::new()
        .tensor(cx, pos)?
        .mem(&scores)
        .dim(t)?
        .dim(n)?
        .dim(keys)?;
    cx.run("mla_prefill_softmax", rows, &a)?;
    let a = Args::new()
        .act(cx, kv)?
        .tensor(cx, pos)?
        .mem(&scores)
        .act(cx, out)?
        .dim(t)?
        .dim(n)?
        .dim(op.nope_dim)?
        .dim(kv_width)?
        .dim(keys)?;
    cx.run("mla_prefill_out", rows * dv, &a)
}
