//! Expert selection per token (spec §5.2, §5.3).
//!
//! Scores `σ` = sigmoid(z) per expert, or softmax over all experts. Selection score: `σ + bias`
//! (NoauxTc) or `σ`. Group score: best + second best selection score of the group (NoauxTc,
//! one f32 add) or the best one (GroupLimitedGreedy); the `topk_group` best groups are kept
//! (Greedy keeps everything), and the `top_k` best experts of the kept groups are chosen, in
//! rank order. Every comparison is "higher value first, equal values → lower index", and a
//! NaN ranks below every number. Weights `w_k = σ[e_k]`; with `norm_topk_prob` and
//! top_k > 1, `w_k /= (s + 1e-20)` where `s` is the sum of the weights in rank order from +0.0;
//! finally `w_k *= routed_scaling_factor`.
use std::cmp::Ordering;

use crate::softmax::softmax_in_place;
use concord_core::numerics::math::sigmoid;
use concord_core::Result;
use concord_ops::{MoeRoute, RouterMethod, RouterScoring};
use rayon::prelude::*;

use crate::storage::{In, Out};

pub(crate) fn run(op: &MoeRoute, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let e = ins[0].desc.shape[1];
    let logits = ins[0].f32s()?;
    let bias = match op.method {
        RouterMethod::NoauxTc => Some(ins[1].f32s()?),
        _ => None,
    };
    let k = op.top_k;
    let (ids_out, w_out) = outs.split_at_mut(1);
    let ids = ids_out[0].u32s();
    let weights = w_out[0].f32s();
    if e == 0 || k == 0 {
        return Ok(());
    }
    ids.par_chunks_mut(k)
        .zip(weights.par_chunks_mut(k))
        .zip(logits.par_chunks(e))
        .with_min_len(super::min_rows(logits.len() / e, e))
        .for_each(|((ids, w), z)| route_token(op, z, bias.as_deref(), ids, w));
    Ok(())
}

/// "a before b": higher value first, equal values → lower index, NaN after every number.
pub(crate) fn rank_order(a: (f32, usize), b: (f32, usize)) -> Ordering {
    match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => a.1.cmp(&b.1),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            b.0.partial_cmp(&a.0)
                .unwrap_or(Ordering::Equal)
                .then(a.1.cmp(&b.1))
        }
    }
}

/// The indices of `vals` restricted to `candidates`, best first.
fn ranked(vals: &[f32], mut candidates: Vec<usize>) -> Vec<usize> {
    candidates.sort_by(|&a, &b| rank_order((vals[a], a), (vals[b], b)));
    candidates
}

fn route_token(op: &MoeRoute, z: &[f32], bias: Option<&[f32]>, ids: &mut [u32], w: &mut [f32]) {
    let e = z.len();
    let sigma: Vec<f32> = match op.scoring {
        RouterScoring::Sigmoid => z.iter().map(|&v| sigmoid(v)).collect(),
        RouterScoring::Softmax => {
            let mut s = z.to_vec();
            softmax_in_place(&mut s);
            s
        }
    };
    let sel: Vec<f32> = match bias {
        Some(b) => sigma.iter().zip(b).map(|(s, b)| s + b).collect(),
        None => sigma.clone(),
    };
    let candidates: Vec<usize> = match op.method {
        RouterMethod::Greedy => (0..e).collect(),
        RouterMethod::NoauxTc | RouterMethod::GroupLimitedGreedy => {
            let size = e / op.n_group;
            let group_scores: Vec<f32> = (0..op.n_group)
                .map(|g| {
                    let members = ranked(&sel, (g * size..(g + 1) * size).collect());
                    if op.method == RouterMethod::NoauxTc {
                        sel[members[0]] + sel[members[1]]
                    } else {
                        sel[members[0]]
                    }
                })
                .collect();
            let groups = ranked(&group_scores, (0..op.n_group).collect());
            let mut kept: Vec<usize> = groups[..op.topk_group]
                .iter()
                .flat_map(|&g| g * size..(g + 1) * size)
                .collect();
            kept.sort_unstable();
            kept
        }
    };
    let chosen = ranked(&sel, candidates);
    for (slot, &ex) in ids.iter_mut().zip(&chosen[..op.top_k]) {
        *slot = ex as u32;
    }
    for (wk, &ex) in w.iter_mut().zip(&chosen[..op.top_k]) {
        *wk = sigma[ex];
    }
    if op.norm_topk_prob && op.top_k > 1 {
        let mut s = 0.0f32;
        for v in w.iter() {
            s += *v;
        }
        let denom = s + 1e-20;
        for v in w.iter_mut() {
            *v /= denom;
        }
    }
    for v in w.iter_mut() {
        *v *= op.routed_scaling_factor;
    }
}
