//! Byte copy of columns `start..start+len` of every row, one work-item per output byte.
use concord_core::Result;
use concord_ops::{SliceColumns, TensorArg};

use super::{Args, Cx, KernelDevice};

pub(super) fn launch<D: KernelDevice>(
    cx: &Cx<D>,
    op: &SliceColumns,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let (x, out) = (&ins[0], &outs[0]);
    let es = x.desc.dtype.size_in_bytes();
    let rows = x.desc.shape[0];
    let (row_in, row_out) = (x.desc.shape[1] * es, op.len * es);
    let args = Args::new()
        .tensor(cx, x)?
        .tensor(cx, out)?
        .dim(rows)?
        .u64(row_in)
        .u64(row_out)
        .u64(op.start * es);
    cx.run("slice_columns", rows * row_out, &args)
}
