//! Copy of columns `start..start+len` of every row (any dtype; a plain byte copy).
use concord_core::Result;
use concord_ops::SliceColumns;

use crate::storage::{In, Out};

pub(crate) fn run(op: &SliceColumns, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let es = ins[0].desc.dtype.size_in_bytes();
    let row_in = ins[0].desc.shape[1] * es;
    let row_out = op.len * es;
    if row_out == 0 {
        return Ok(());
    }
    let start = op.start * es;
    for (o, i) in outs[0]
        .bytes
        .chunks_exact_mut(row_out)
        .zip(ins[0].bytes.chunks_exact(row_in))
    {
        o.copy_from_slice(&i[start..start + row_out]);
    }
    Ok(())
}
