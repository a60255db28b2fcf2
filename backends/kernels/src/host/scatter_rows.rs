//! `dst[slots[t]] = src[t]` in t order, one work-item per byte column; a slot past the
//! destination is reported at the next read or synchronize and nothing is written.
use concord_core::Result;
use concord_ops::TensorArg;

use super::{Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (src, slots, dst) = (&ins[0], &ins[1], &outs[0]);
    let row_bytes = src.desc.shape[1] * src.desc.dtype.size_in_bytes();
    let args = Args::new()
        .tensor(cx, src)?
        .tensor(cx, slots)?
        .tensor(cx, dst)?
        .dim(src.desc.shape[0])?
        .dim(dst.desc.shape[0])?
        .u64(row_bytes)
        .status(cx);
    cx.run("scatter_rows", row_bytes, &args)
}
