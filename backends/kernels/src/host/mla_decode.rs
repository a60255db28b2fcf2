//! Five kernels over scratch q_lat [T·N, R], scores [T·N, S] and o_lat [T·N, R]:
//! q_lat, scores, softmax, o_lat, out.
use concord_core::Result;
use concord_ops::{MlaDecode, TensorArg};

use super::{f32s, Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &MlaDecode,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (q, q_pe, w, latent, k_pe, pos) = (&ins[0], &ins[1], &ins[2], &ins[3], &ins[4], &ins[5]);
    let out = &outs[0];
    let (t, n, q_width) = (q.desc.shape[0], q.desc.shape[1], q.desc.shape[2]);
    let rope = q_pe.desc.shape[2];
    let rank = w.desc.shape[1];
    let keys = latent.desc.shape[0];
    let rows = t * n;
    if rows == 0 || op.v_dim == 0 {
        return Ok(());
    }
    let q_lat = cx.scratch(f32s(rows * rank))?;
    let scores = cx.scratch(f32s(rows * keys))?;
    let o_lat = cx.scratch(f32s(rows * rank))?;
    let a = Args::new()
        .act(cx, q)?
        .act(cx, w)?
        .mem(&q_lat)
        .dim(t)?
        .dim(n)?
        .dim(q_width)?
        .dim(op.nope_dim)?
        .dim(op.v_dim)?
        .dim(rank)?;
    cx.run("mla_decode_q_lat", rows * rank, &a)?;
    let a = Args::new()
        .mem(&q_lat)
        .act(cx, q_pe)?
        .act(cx, latent)?
        .act(cx, k_pe)?
        .tensor(cx, pos)?
        .mem(&scores)
        .dim(t)?
        .dim(n)?
        .dim(rope)?
        .dim(rank)?
        .dim(keys)?
        .f32(op.scale);
    cx.run("mla_decode_scores", rows * keys, &a)?;
    let a = Args::new()
        .tensor(cx, pos)?
        .mem(&scores)
        .dim(t)?
        .dim(n)?
        .dim(keys)?;
    cx.run("mla_decode_softmax", rows, &a)?;
    let a = Args::new()
        .mem(&scores)
        .act(cx, latent)?
        .tensor(cx, pos)?
        .mem(&o_lat)
        .dim(t)?
        .dim(n)?
        .dim(rank)?
        .dim(keys)?;
    cx.run("mla_decode_o_lat", rows * rank, &a)?;
    let a = Args::new()
        .mem(&o_lat)
        .act(cx, w)?
        .act(cx, out)?
        .dim(t)?
        .dim(n)?
        .dim(op.nope_dim)?
        .dim(op.v_dim)?
        .dim(rank)?;
    cx.run("mla_decode_out", rows * op.v_dim, &a)
}
