//! Naive MLA attention of one sequence (spec §3.2), per query t and head h:
//! `score(u) = dot([q_nope ; q_pe], [k_nope(u) ; k_pe(u)]) · scale` as ONE canonical dot of
//! Dn + Dr terms, over the visible keys u ≤ positions[t]; `p = softmax(score)`;
//! `o[j] = A(Σ_u p_u · v(u)[j])` in canonical order over the visible keys.
//!
//! Each task is [`QUERIES`] consecutive queries of one head: every key is loaded once for
//! all of them (`attention_lanes`), each score still its own canonical dot.
//!
//! Masked keys (u > positions[t]) take no part at all: a softmax over all S keys with −∞ for
//! the masked ones gives the same probabilities, and leaving their (exactly zero) value terms
//! out means unwritten cache rows can never leak a NaN into the output.
use crate::softmax::softmax_in_place;
use concord_core::numerics::reduce::REDUCE_BLOCK;
use concord_core::Result;
use concord_ops::MlaPrefill;
use rayon::prelude::*;

use super::attention_lanes::{block_value_sums, concat_scores, ConcatKeys, Rows, QUERIES};
use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::storage::{In, Out};

pub(crate) fn run(op: &MlaPrefill, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let (q, q_pe) = (ins[0].f32s()?, ins[1].f32s()?);
    let dims = Dims {
        heads: ins[0].desc.shape[1],
        q_width: ins[0].desc.shape[2],
        nope: op.nope_dim,
        rope: ins[1].desc.shape[2],
        kv_width: ins[2].desc.shape[2],
        keys: ins[2].desc.shape[0],
        scale: op.scale,
    };
    let pos = ins[4].u32s();
    let (kv, k_pe) = (ins[2].act()?, ins[3].act()?);
    dispatch!(outs[0].act()?, ActMut, |out| dispatch!(
        kv,
        Act,
        |kv| dispatch!(k_pe, Act, |k_pe| dims.attend(&q, &q_pe, kv, k_pe, pos, out))
    ));
    Ok(())
}

/// Number of keys a query at absolute position `pos` sees among `keys` cached ones.
pub(crate) fn visible(pos: u32, keys: usize) -> usize {
    (pos as usize).saturating_add(1).min(keys)
}

struct Dims {
    heads: usize,
    q_width: usize,
    nope: usize,
    rope: usize,
    kv_width: usize,
    keys: usize,
    scale: f32,
}

impl Dims {
    #[allow(clippy::too_many_arguments)]
    fn attend<K: Elem, P: Elem, O: OutElem>(
        &self,
        q: &[f32],
        q_pe: &[f32],
        kv: &[K],
        k_pe: &[P],
        pos: &[u32],
        out: &mut [O],
    ) {
        let (n, dn) = (self.heads, self.nope);
        let dv = self.kv_width - dn;
        if dv == 0 || n == 0 {
            return;
        }
        // Tasks: QUERIES consecutive tokens of one head (rows t·n + h of the output).
        let mut rows: Vec<Option<&mut [O]>> = out.chunks_mut(dv).map(Some).collect();
        let t = rows.len() / n;
        let mut tasks = Vec::with_capacity(n * t.div_ceil(QUERIES));
        for t0 in (0..t).step_by(QUERIES) {
            for h in 0..n {
                let outs: [Option<&mut [O]>; QUERIES] =
                    std::array::from_fn(|r| rows.get_mut((t0 + r) * n + h).and_then(Option::take));
                tasks.push((t0, h, outs));
            }
        }
        tasks
            .into_par_iter()
            .for_each_init(Scratch::default, |scratch, (t0, h, outs)| {
                self.attend_group(q, q_pe, kv, k_pe, pos, t0, h, outs, scratch)
            });
    }

    /// Queries t0 .. t0 + QUERIES (those that exist) of head h.
    #[allow(clippy::too_many_arguments)]
    fn attend_group<K: Elem, P: Elem, O: OutElem>(
        &self,
        q: &[f32],
        q_pe: &[f32],
        kv: &[K],
        k_pe: &[P],
        pos: &[u32],
        t0: usize,
        h: usize,
        outs: [Option<&mut [O]>; QUERIES],
        scratch: &mut Scratch,
    ) {
        let (n, dn, dr) = (self.heads, self.nope, self.rope);
        let (width, dv) = (dn + dr, self.kv_width - dn);
        let real = |r: usize| outs[r].is_some();
        // Visible keys per query (0 for a missing query, which then takes no part).
        let seen: [usize; QUERIES] = std::array::from_fn(|r| {
            if real(r) {
                visible(pos[t0 + r], self.keys)
            } else {
                0
            }
        });
        let most = seen.iter().copied().max().unwrap_or(0);
        scratch.size(width, most, dv);
        let Scratch {
            queries,
            key,
            scores,
            block,
            acc,
        } = scratch;
        for (r, qc) in queries.chunks_exact_mut(width).enumerate() {
            if real(r) {
                let row = (t0 + r) * n + h;
                qc[..dn].copy_from_slice(&q[row * self.q_width..row * self.q_width + dn]);
                qc[dn..].copy_from_slice(&q_pe[row * dr..(row + 1) * dr]);
            } else {
                qc.fill(0.0);
            }
        }
        let keys = ConcatKeys {
            kv,
            stride: n * self.kv_width,
            offset: h * self.kv_width,
            nope: dn,
            k_pe,
            rope: dr,
        };
        let qs: [&[f32]; QUERIES] = split(queries, width).map(|q| &*q);
        // Scores of every query against the keys any of them sees; a query's keys past its
        // own count are computed but never used.
        concat_scores(
            qs,
            &keys,
            key,
            self.scale,
            split(&mut scores[..QUERIES * most], most),
        );
        let mut p: [&mut [f32]; QUERIES] = split(&mut scores[..QUERIES * most], most);
        for r in 0..QUERIES {
            p[r] = &mut std::mem::take(&mut p[r])[..seen[r]];
            softmax_in_place(p[r]);
        }
        let values = Rows {
            values: kv,
            stride: n * self.kv_width,
            offset: h * self.kv_width + dn,
            width: dv,
        };
        acc[..QUERIES * dv].fill(0.0);
        for b0 in (0..most).step_by(REDUCE_BLOCK) {
            let coef: [&[f32]; QUERIES] =
                std::array::from_fn(|r| &p[r][b0.min(seen[r])..(b0 + REDUCE_BLOCK).min(seen[r])]);
            block_value_sums(coef, &values, b0, split(&mut block[..QUERIES * dv], dv));
            // Block totals in order from +0.0; a query whose keys ended adds nothing.
            for r in 0..QUERIES {
                if b0 < seen[r] {
                    let a = &mut acc[r * dv..(r + 1) * dv];
                    for (a, v) in a.iter_mut().zip(&block[r * dv..(r + 1) * dv]) {
                        *a += *v;
                    }
                }
            }
        }
        for (r, o) in outs.into_iter().enumerate() {
            if let Some(o) = o {
                for (d, v) in o.iter_mut().zip(&acc[r * dv..(r + 1) * dv]) {
                    *d = O::store(*v);
                }
            }
        }
    }
}

/// The QUERIES consecutive parts of `len` elements at the start of `buf`.
pub(crate) fn split<T>(buf: &mut [T], len: usize) -> [&mut [T]; QUERIES] {
    let mut rest = buf;
    std::array::from_fn(|_| {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        part
    })
}

/// Buffers of one worker, grown as needed and reused from task to task.
#[derive(Default)]
struct Scratch {
    /// QUERIES query concatenations [Dn + Dr].
    queries: Vec<f32>,
    /// One key concatenation, widened.
    key: Vec<f32>,
    /// QUERIES score rows over the keys.
    scores: Vec<f32>,
    /// QUERIES block totals [Dv], and their sums.
    block: Vec<f32>,
    acc: Vec<f32>,
}

impl Scratch {
    fn size(&mut self, width: usize, keys: usize, dv: usize) {
        let grow = |v: &mut Vec<f32>, n: usize| {
            if v.len() < n {
                v.resize(n, 0.0);
            }
        };
        self.queries.resize(QUERIES * width, 0.0);
        grow(&mut self.key, width);
        grow(&mut self.scores, QUERIES * keys);
        grow(&mut self.block, QUERIES * dv);
        grow(&mut self.acc, QUERIES * dv);
    }
}
