//! Expert selection, one work-item per token over scratch σ [T, E] and group scores [T, G].
use concord_core::Result;
use concord_ops::{MoeRoute, RouterMethod, RouterScoring, TensorArg};

use super::{f32s, Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &MoeRoute,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let logits = &ins[0];
    let (t, e) = (logits.desc.shape[0], logits.desc.shape[1]);
    if t == 0 || e == 0 || op.top_k == 0 {
        return Ok(());
    }
    // Without a bias the kernel never reads it; any buffer fills the parameter.
    let (bias, has_bias) = match ins.get(1) {
        Some(b) => (b, 1),
        None => (logits, 0),
    };
    let scoring = match op.scoring {
        RouterScoring::Sigmoid => 0,
        RouterScoring::Softmax => 1,
    };
    let method = match op.method {
        RouterMethod::NoauxTc => 0,
        RouterMethod::Greedy => 1,
        RouterMethod::GroupLimitedGreedy => 2,
    };
    let sigma = cx.scratch(f32s(t * e))?;
    let groups = cx.scratch(f32s(t * op.n_group))?;
    let a = Args::new()
        .tensor(cx, logits)?
        .tensor(cx, bias)?
        .u32(has_bias)
        .tensor(cx, &outs[0])?
        .tensor(cx, &outs[1])?
        .mem(&sigma)
        .mem(&groups)
        .dim(t)?
        .dim(e)?
        .u32(scoring)
        .u32(method)
        .dim(op.n_group)?
        .dim(op.topk_group)?
        .dim(op.top_k)?
        .u32(op.norm_topk_prob as u32)
        .f32(op.routed_scaling_factor);
    cx.run("moe_route", t, &a)
}
