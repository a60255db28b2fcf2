//! `dst[t] = src[rows[t]]` (any dtype; a plain byte copy); a row ≥ S is an error.
use concord_core::{Error, Result};
use concord_ops::GatherRows;

use crate::storage::{In, Out};

pub(crate) fn run(_op: &GatherRows, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let rows = ins[1].u32s();
    let src_rows = ins[0].desc.shape[0];
    if let Some(bad) = rows.iter().find(|&&r| r as usize >= src_rows) {
        return Err(Error::invalid(format!(
            "gather_rows: row {bad} outside a source of {src_rows} rows"
        )));
    }
    let row = ins[0].desc.shape[1] * ins[0].desc.dtype.size_in_bytes();
    if row == 0 {
        return Ok(());
    }
    let src = ins[0].bytes;
    for (dst, &r) in outs[0].bytes.chunks_exact_mut(row).zip(rows) {
        let s = r as usize * row;
        dst.copy_from_slice(&src[s..s + row]);
    }
    Ok(())
}
