//! `dst[slots[t]] = src[t]` in t order (a later duplicate slot wins); other rows untouched.
use concord_core::{Error, Result};
use concord_ops::ScatterRows;

use crate::storage::{In, Out};

pub(crate) fn run(_op: &ScatterRows, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let slots = ins[1].u32s();
    let rows = outs[0].desc.shape[0];
    if let Some(bad) = slots.iter().find(|&&s| s as usize >= rows) {
        return Err(Error::invalid(format!(
            "scatter_rows: slot {bad} outside a destination of {rows} rows"
        )));
    }
    let row = ins[0].desc.shape[1] * ins[0].desc.dtype.size_in_bytes();
    if row == 0 {
        return Ok(());
    }
    let dst = &mut *outs[0].bytes;
    for (src, &slot) in ins[0].bytes.chunks_exact(row).zip(slots) {
        let s = slot as usize * row;
        dst[s..s + row].copy_from_slice(src);
    }
    Ok(())
}
