//! Next-token choice per row, over ids `< valid_vocab` (docs/numerics.md §Sampling).
//!
//! Greedy — argmax, ties → lower id, NaN never wins (all NaN → id 0) — when `temperature <
//! Sample::GREEDY_BELOW` (1e-5) or the highest logit `m` is ±∞. Otherwise:
//! `l_i = (logits_i − m) / temperature` (≤ 0, `l = 0` for the argmax, so nothing overflows and
//! no NaN arises but from NaN logits); candidates = the non-NaN l in id order; if `min_p > 0`,
//! `q` = softmax over every candidate in id order and candidates with `q < min_p · max q` go;
//! the rest sorted by l descending (ties → lower id); keep the first `top_k` (0 = all); softmax over the kept
//! values in sorted order; if `top_p < 1` keep the shortest prefix whose running sum (in
//! order, from +0.0) reaches top_p (at least one); `total` = running sum of the kept
//! probabilities; `target = uniform · total`; the first kept id whose running sum exceeds
//! target wins (the last kept one if none does). No candidate at all (every logit NaN) → 0.
use crate::softmax::softmax_in_place;
use concord_core::Result;
use concord_ops::Sample;
use rayon::prelude::*;

use super::moe_route::rank_order;
use crate::storage::{In, Out};

pub(crate) fn run(op: &Sample, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let v = ins[0].desc.shape[1];
    let logits = ins[0].f32s()?;
    let uniform = ins[1].f32s()?;
    if v == 0 {
        return Ok(());
    }
    outs[0]
        .u32s()
        .par_iter_mut()
        .zip(logits.par_chunks(v))
        .zip(uniform.par_iter())
        .for_each(|((id, row), &u)| *id = sample_row(op, &row[..op.valid_vocab], u) as u32);
    Ok(())
}

fn sample_row(op: &Sample, logits: &[f32], uniform: f32) -> usize {
    let best = argmax(logits);
    let max = logits.get(best).copied().unwrap_or(f32::NAN);
    if op.is_greedy() || !max.is_finite() {
        return best;
    }
    let scaled: Vec<f32> = logits.iter().map(|&l| (l - max) / op.temperature).collect();
    let mut order: Vec<usize> = (0..scaled.len()).filter(|&i| !scaled[i].is_nan()).collect();
    if order.is_empty() {
        return 0;
    }
    if op.min_p > 0.0 {
        keep_min_p(&mut order, &scaled, op.min_p);
    }
    let cmp = |a: &usize, b: &usize| rank_order((scaled[*a], *a), (scaled[*b], *b));
    if op.top_k > 0 && op.top_k < order.len() {
        order.select_nth_unstable_by(op.top_k - 1, cmp);
        order.truncate(op.top_k);
    }
    order.sort_unstable_by(cmp);
    let mut probs: Vec<f32> = order.iter().map(|&i| scaled[i]).collect();
    softmax_in_place(&mut probs);
    let mut kept = probs.len();
    if op.top_p < 1.0 {
        let mut c = 0.0f32;
        for (i, p) in probs.iter().enumerate() {
            c += *p;
            if c >= op.top_p {
                kept = i + 1;
                break;
            }
        }
    }
    let mut total = 0.0f32;
    for p in &probs[..kept] {
        total += *p;
    }
    if total.is_nan() || total <= 0.0 {
        // Unreachable (the argmax is kept with probability > 0); kept as the documented rule.
        return order[0];
    }
    let target = uniform * total;
    let mut c = 0.0f32;
    for (i, p) in probs[..kept].iter().enumerate() {
        c += *p;
        if c > target {
            return order[i];
        }
    }
    order[kept - 1]
}

/// Drops the candidates (ids in id order) whose probability, softmax over all of them in that
/// order, is below `min_p` times the highest; the highest itself always stays.
fn keep_min_p(order: &mut Vec<usize>, scaled: &[f32], min_p: f32) {
    let mut q: Vec<f32> = order.iter().map(|&i| scaled[i]).collect();
    softmax_in_place(&mut q);
    let top = q.iter().fold(0.0f32, |m, &p| if p > m { p } else { m });
    let threshold = min_p * top;
    let mut next = q.iter();
    order.retain(|_| next.next().is_some_and(|&p| p >= threshold));
}

/// Highest logit, ties → lower id, NaN never wins (all NaN → 0).
fn argmax(logits: &[f32]) -> usize {
    let mut best: Option<usize> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() {
            continue;
        }
        match best {
            Some(b) if logits[b] >= l => {}
            _ => best = Some(i),
        }
    }
    best.unwrap_or(0)
}
