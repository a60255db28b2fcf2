//! Weight-absorbed MLA over the latent cache (spec §3.5), per query t and head h, with
//! `W = wkv_b` rows `h·(Dn+Dv) ..`:
//! `q_lat[c] = Σ_j W[j, c]·q_nope[j]` (canonical over j, f32, not rounded);
//! `score(u) = (dot(q_lat, latent[u]) + dot(q_pe, k_pe[u])) · scale` over the visible keys
//! u ≤ positions[t]; `p = softmax(score)`; `o_lat[c] = Σ_u p_u·latent[u, c]` (canonical, f32);
//! `o[j] = A(dot(W[Dn + j, :], o_lat))`. Masked keys take no part (as in mla_prefill).
//!
//! Per token, the latent cache is read once for all heads: the scores in parallel over key
//! ranges (each cache row widened once, every head's score its own pair of canonical dots),
//! then the value sums in parallel over 128-key blocks (the block totals of all heads), the
//! block totals added in block order from +0.0 — the contract's order for every output.
use concord_core::numerics::math::softmax_in_place;
use concord_core::numerics::reduce::REDUCE_BLOCK;
use concord_core::Result;
use concord_ops::MlaDecode;
use rayon::prelude::*;

use super::attention_lanes::{block_value_sums, latent_scores, Rows, QUERIES};
use super::mla_prefill::split;
use super::mla_prefill::visible;
use crate::canonical::{dot, weighted_rows};
use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::gemv::on_pool;
use crate::storage::{In, Out};

pub(crate) fn run(op: &MlaDecode, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let (q, q_pe) = (ins[0].f32s()?, ins[1].f32s()?);
    let dims = Dims {
        heads: ins[0].desc.shape[1],
        q_width: ins[0].desc.shape[2],
        nope: op.nope_dim,
        v_dim: op.v_dim,
        rope: ins[1].desc.shape[2],
        rank: ins[2].desc.shape[1],
        keys: ins[3].desc.shape[0],
        scale: op.scale,
    };
    let pos = ins[5].u32s();
    let (w, latent, k_pe) = (ins[2].act()?, ins[3].act()?, ins[4].act()?);
    // Several parallel passes per token: run them from a pool worker, where each fork
    // and join is cheap, instead of injecting every pass from this thread.
    dispatch!(outs[0].act()?, ActMut, |out| dispatch!(
        w,
        Act,
        |w| dispatch!(latent, Act, |latent| dispatch!(k_pe, Act, |k_pe| on_pool(
            || dims.attend(&q, &q_pe, w, latent, k_pe, pos, out)
        )))
    ));
    Ok(())
}

struct Dims {
    heads: usize,
    q_width: usize,
    nope: usize,
    v_dim: usize,
    rope: usize,
    rank: usize,
    keys: usize,
    scale: f32,
}

/// Keys per parallel task of the score pass (whole 128-key blocks).
const TASK_KEYS: usize = 4 * REDUCE_BLOCK;

impl Dims {
    #[allow(clippy::too_many_arguments)]
    fn attend<W: Elem, L: Elem, P: Elem, O: OutElem>(
        &self,
        q: &[f32],
        q_pe: &[f32],
        w: &[W],
        latent: &[L],
        k_pe: &[P],
        pos: &[u32],
        out: &mut [O],
    ) {
        let (n, dn, dv, dr, r) = (self.heads, self.nope, self.v_dim, self.rope, self.rank);
        if dv == 0 || n == 0 {
            return;
        }
        let padded = n.next_multiple_of(QUERIES);
        let w_row = |row: usize| &w[row * r..(row + 1) * r];
        // Heads padded with zero rows to whole groups of QUERIES.
        let mut q_lat = vec![0.0f32; padded * r];
        let mut q_rope = vec![0.0f32; padded * dr];
        let mut scores = Vec::new();
        let mut p = Vec::new();
        let mut blocks = Vec::new();
        let mut o_lat = vec![0.0f32; padded * r];
        for (t, o) in out.chunks_mut(n * dv).enumerate() {
            let row0 = t * n;
            q_lat[..n * r]
                .par_chunks_mut(r.max(1))
                .enumerate()
                .for_each(|(h, ql)| {
                    let q_nope = &q[(row0 + h) * self.q_width..(row0 + h) * self.q_width + dn];
                    weighted_rows(q_nope, |j| w_row(h * (dn + dv) + j), ql);
                });
            q_rope[..n * dr].copy_from_slice(&q_pe[row0 * dr..(row0 + n) * dr]);
            let s = visible(pos[t], self.keys);
            // Scores key-major [s, n]: each cache row is read once for all heads.
            scores.clear();
            scores.resize(s * n, 0.0f32);
            scores
                .par_chunks_mut(TASK_KEYS * n)
                .enumerate()
                .for_each(|(c, sc)| {
                    let mut key = vec![0.0f32; r + dr];
                    latent_scores(
                        &q_lat,
                        &q_rope,
                        n,
                        latent,
                        k_pe,
                        c * TASK_KEYS,
                        &mut key,
                        self.scale,
                        sc,
                    );
                });
            // Probabilities head-major [padded, s]; padded heads see no keys.
            p.clear();
            p.resize(padded * s, 0.0f32);
            p.par_chunks_mut(s.max(1))
                .take(n)
                .enumerate()
                .for_each(|(h, ph)| {
                    for (d, u) in ph.iter_mut().zip(0..s) {
                        *d = scores[u * n + h];
                    }
                    softmax_in_place(ph);
                });
            // Value sums: each 128-key block's totals for all heads in parallel (the block's
            // latent rows read once, shared by the heads), then the totals in block order.
            let nblocks = s.div_ceil(REDUCE_BLOCK);
            blocks.clear();
            blocks.resize(nblocks * padded * r, 0.0f32);
            if r > 0 {
                blocks.par_chunks_mut(padded * r).enumerate().for_each_init(
                    Vec::new,
                    |wide: &mut Vec<f32>, (b, tot)| {
                        let (b0, b1) = (b * REDUCE_BLOCK, ((b + 1) * REDUCE_BLOCK).min(s));
                        // The block's latent rows widened once for all head groups.
                        wide.clear();
                        wide.extend(latent[b0 * r..b1 * r].iter().map(|v| v.f()));
                        let rows = Rows {
                            values: &wide[..],
                            stride: r,
                            offset: 0,
                            width: r,
                        };
                        for (g, tg) in tot.chunks_mut(QUERIES * r).enumerate() {
                            let heads = g * QUERIES..(g + 1) * QUERIES;
                            let coef: [&[f32]; QUERIES] = std::array::from_fn(|i| {
                                let h = heads.start + i;
                                if h < n {
                                    &p[h * s + b0..h * s + b1]
                                } else {
                                    &[]
                                }
                            });
                            block_value_sums(coef, &rows, 0, split(tg, r));
                        }
                    },
                );
            }
            o_lat.fill(0.0);
            for tot in blocks.chunks(padded * r) {
                for (a, v) in o_lat.iter_mut().zip(tot) {
                    *a += *v;
                }
            }
            o.par_chunks_mut(dv).enumerate().for_each(|(h, oh)| {
                let base = h * (dn + dv);
                for (j, d) in oh.iter_mut().enumerate() {
                    *d = O::store(dot(&o_lat[h * r..(h + 1) * r], w_row(base + dn + j)));
                }
            });
        }
    }
}
