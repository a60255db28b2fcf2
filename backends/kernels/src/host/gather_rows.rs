//! `dst[t] = src[rows[t]]`, one work-item per output byte; a row past the source is reported
//! at the next read or synchronize.
use concord_core::Result;
use concord_ops::TensorArg;

use super::{Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (src, rows, dst) = (&ins[0], &ins[1], &outs[0]);
    let row_bytes = src.desc.shape[1] * src.desc.dtype.size_in_bytes();
    let tokens = rows.desc.shape[0];
    let args = Args::new()
        .tensor(cx, src)?
        .tensor(cx, rows)?
        .tensor(cx, dst)?
        .dim(tokens)?
        .dim(src.desc.shape[0])?
        .u64(row_bytes)
        .status(cx);
    cx.run("gather_rows", tokens * row_bytes, &args)
}
