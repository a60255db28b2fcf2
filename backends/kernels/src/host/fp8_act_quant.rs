//! Per row and 128-column block: scale (in the op's format) and e4m3 codes, one work-item per
//! block.
use concord_core::Result;
use concord_ops::{Fp8ActQuant, TensorArg, FP8_ACT_BLOCK};

use super::{Args, Cx, KernelDevice};
use crate::scale_fmt_code;

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &Fp8ActQuant,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (x, q, s) = (&ins[0], &outs[0], &outs[1]);
    let (rows, k) = (x.desc.shape[0], x.desc.shape[1]);
    let args = Args::new()
        .act(cx, x)?
        .tensor(cx, q)?
        .tensor(cx, s)?
        .dim(rows)?
        .dim(k)?
        .u32(scale_fmt_code::of(op.scale_fmt));
    cx.run("fp8_act_quant", rows * k.div_ceil(FP8_ACT_BLOCK), &args)
}
