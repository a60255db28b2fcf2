//! Repetition, frequency and presence penalties (docs/numerics.md §Sampling): each row's
//! logits copied, then each `(id, output_count, in_prompt)` entry of the row applied in order
//! (ids ≥ V are padding).
use concord_core::Result;
use concord_ops::Penalize;
use rayon::prelude::*;

use crate::storage::{In, Out};

pub(crate) fn run(op: &Penalize, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let v = ins[0].desc.shape[1];
    let k = ins[1].desc.shape[1];
    let logits = ins[0].f32s()?;
    let seen = ins[1].u32s();
    let out = outs[0].f32s();
    out.copy_from_slice(&logits);
    if v == 0 || k == 0 {
        return Ok(());
    }
    out.par_chunks_mut(v)
        .zip(seen.par_chunks(k * 3))
        .for_each(|(row, entries)| {
            for e in entries.chunks_exact(3) {
                if let Some(l) = row.get_mut(e[0] as usize) {
                    *l = penalized(op, *l, e[1], e[2] != 0);
                }
            }
        });
    Ok(())
}

/// One logit under the penalties, for an id seen `count` times in the output and (or) in the
/// prompt: repetition (`l / r` for `l > 0`, else `l · r`), then `(l − f·count) − p`.
fn penalized(op: &Penalize, mut l: f32, count: u32, in_prompt: bool) -> f32 {
    if count > 0 || in_prompt {
        l = if l > 0.0 {
            l / op.repetition
        } else {
            l * op.repetition
        };
    }
    if count > 0 {
        l = (l - op.frequency * count as f32) - op.presence;
    }
    l
}
