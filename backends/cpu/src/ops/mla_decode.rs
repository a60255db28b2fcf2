//! Weight-absorbed MLA over the latent cache (spec §3.5), per query t and head h, with
//! `W = wkv_b` rows `h·(Dn+Dv) ..`:
//! `q_lat[c] = Σ_j W[j, c]·q_nope[j]` (canonical over j, f32, not rounded);
//! `score(u) = (dot(q_lat, latent[u]) + dot(q_pe, k_pe[u])) · scale` over the visible keys
//! u ≤ positions[t]; `p = softmax(score)`; `o_lat[c] = Σ_u p_u·latent[u, c]` (canonical, f32);
//! `o[j] = A(dot(W[Dn + j, :], o_lat))`. Masked keys take no part (as in mla_prefill).
//!
//! Per token, the latent cache is read once for all heads: the scores over key ranges (each
//! cache row widened once, every head's score its own pair of canonical dots), then the value
//! sums over 128-key blocks (the block totals of all heads), the block totals added in block
//! order from +0.0 — the contract's order for every output. Large rows split each pass into
//! parallel tasks; small rows (a verification's few rows on a small model) run [`QUERIES`] at
//! a time, each row of `W` loaded once for the group, a group's heads split over the threads
//! when there are fewer groups than threads. The per-element
//! arithmetic is the same either way, so the bits never depend on the path.
use crate::softmax::softmax_in_place;
use concord_core::numerics::reduce::REDUCE_BLOCK;
use concord_core::Result;
use concord_ops::MlaDecode;
use rayon::prelude::*;

use super::attention_lanes::{block_value_sums, latent_scores, shared_row_dots, Rows, QUERIES};
use super::mla_prefill::split as split4;
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

/// Keys per parallel task of the score pass on a long cache (whole 128-key blocks).
const TASK_KEYS: usize = 4 * REDUCE_BLOCK;
/// Fewest keys per parallel task of the score pass on a short cache.
const MIN_TASK_KEYS: usize = 16;
/// Probabilities (heads × visible keys) below which the softmaxes run on one thread.
const PARALLEL_SOFTMAX: usize = 1 << 13;

/// Multiply-adds of one query row below which rows are computed [`QUERIES`] at a time on
/// one thread (groups in parallel), each weight row read once per group; above it each row's
/// passes are split into parallel tasks. A fork and join per pass costs more than the demo's
/// 4 heads over ≤ 150 keys (≈ 46 000 at 51 keys took 8 µs split or not).
const SERIAL_ROW_WORK: usize = 1 << 17;

/// Buffers of one task, reused from row to row.
#[derive(Default)]
struct Scratch {
    q_lat: Vec<f32>,
    q_rope: Vec<f32>,
    scores: Vec<f32>,
    p: Vec<f32>,
    blocks: Vec<f32>,
    o_lat: Vec<f32>,
    key: Vec<f32>,
    wide: Vec<f32>,
    totals: Vec<f32>,
}

impl Dims {
    /// Multiply-adds of one query row over `s` visible keys.
    fn row_work(&self, s: usize) -> usize {
        let per_head =
            self.nope * self.rank + s * (2 * self.rank + self.rope) + self.v_dim * self.rank;
        self.heads * per_head
    }

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
        let (n, dv) = (self.heads, self.v_dim);
        if dv == 0 || n == 0 {
            return;
        }
        let inputs = Inputs {
            q,
            q_pe,
            w,
            latent,
            k_pe,
            pos,
        };
        let longest = pos
            .iter()
            .map(|&p| visible(p, self.keys))
            .max()
            .unwrap_or(0);
        let split = self.row_work(longest) >= SERIAL_ROW_WORK;
        if split {
            touch_lines(w);
        }
        if !split && out.len() > n * dv {
            // Rows in groups of at most QUERIES (each row of W loaded once for a group's
            // rows); with fewer groups than threads, each group's heads are split into parts
            // as well (4 rows on two threads: heads 0–1 and 2–3 of all 4 rows, where two
            // groups of 2 rows left half of every shared W row's queries empty).
            let rows = out.len() / (n * dv);
            // Groups of even size (5 rows: 3 and 2, not 4 and 1).
            let groups = rows.div_ceil(QUERIES);
            let size = rows.div_ceil(groups);
            let parts = (rayon::current_num_threads() / groups).clamp(1, n);
            let per = n.div_ceil(parts);
            let tasks: Vec<(usize, usize)> = (0..groups)
                .flat_map(|g| (0..n).step_by(per).map(move |h0| (g * size, h0)))
                .collect();
            let results: Vec<Vec<O>> = tasks
                .par_iter()
                .with_max_len(1)
                .map_init(Scratch::default, |scratch, &(t0, h0)| {
                    let heads = (h0, (h0 + per).min(n));
                    let rows = (rows - t0).min(size);
                    let mut o = vec![O::store(0.0); rows * (heads.1 - heads.0) * dv];
                    self.attend_group(t0, heads, &inputs, &mut o, scratch);
                    o
                })
                .collect();
            for (&(t0, h0), o) in tasks.iter().zip(&results) {
                let hn = (h0 + per).min(n) - h0;
                for (q, oq) in o.chunks_exact(dv).enumerate() {
                    let (t, h) = (t0 + q / hn, h0 + q % hn);
                    out[(t * n + h) * dv..][..dv].copy_from_slice(oq);
                }
            }
        } else {
            let mut scratch = Scratch::default();
            for (t, o) in out.chunks_mut(n * dv).enumerate() {
                self.attend_row(t, &inputs, o, &mut scratch, split);
            }
        }
    }

    /// Heads `heads.0 .. heads.1` of query rows `t0 ..` (≤ [`QUERIES`], as many as `o`
    /// holds) on this thread, `o` [rows, heads, Dv]: each row of `W` is loaded once for all
    /// of the rows, in `q_lat` and in the output projection.
    fn attend_group<W: Elem, L: Elem, P: Elem, O: OutElem>(
        &self,
        t0: usize,
        heads: (usize, usize),
        x: &Inputs<W, L, P>,
        o: &mut [O],
        scratch: &mut Scratch,
    ) {
        let (dn, dv, r) = (self.nope, self.v_dim, self.rank);
        let hn = heads.1 - heads.0;
        let rows = o.len() / (hn * dv);
        // Query q = i·hn + (h - heads.0) of row t0 + i, zero queries up to a multiple of
        // QUERIES.
        let queries = (rows * hn).next_multiple_of(QUERIES);
        let at = |i: usize, h: usize| (i * hn + h - heads.0) * r;
        let mut q_lat = std::mem::take(&mut scratch.q_lat);
        let mut o_lat = std::mem::take(&mut scratch.o_lat);
        q_lat.clear();
        q_lat.resize(queries * r, 0.0);
        o_lat.clear();
        o_lat.resize(queries * r, 0.0);
        // q_lat[i][h] = Σ_j W[h·(Dn+Dv) + j]·q_nope[i][h][j]: per 128-term block the lanes and
        // tree of `weighted_rows`, the block totals added in order from +0.0.
        let totals = &mut scratch.totals;
        totals.clear();
        totals.resize(QUERIES * r, 0.0);
        let w_rows = Rows {
            values: x.w,
            stride: r,
            offset: 0,
            width: r,
        };
        for h in heads.0..heads.1 {
            for b0 in (0..dn).step_by(REDUCE_BLOCK) {
                let b1 = (b0 + REDUCE_BLOCK).min(dn);
                let coef: [&[f32]; QUERIES] = std::array::from_fn(|i| {
                    if i < rows {
                        let at = ((t0 + i) * self.heads + h) * self.q_width;
                        &x.q[at + b0..at + b1]
                    } else {
                        &[]
                    }
                });
                block_value_sums(coef, &w_rows, h * (dn + dv) + b0, split4(totals, r));
                for (i, tot) in totals.chunks(r).take(rows).enumerate() {
                    for (a, v) in q_lat[at(i, h)..][..r].iter_mut().zip(tot) {
                        *a += *v;
                    }
                }
            }
        }
        // The group's queries attend together: each cache row is read once for all of them.
        self.latent_attention(t0, rows, heads, &q_lat, x, scratch, &mut o_lat, false);
        // o[i][h][j] = A(dot(W[h·(Dn+Dv) + Dn + j], o_lat[i][h])), the row shared by the rows.
        let zeros = vec![0.0f32; r];
        for h in heads.0..heads.1 {
            for j in 0..dv {
                let row = h * (dn + dv) + dn + j;
                let lat: [&[f32]; QUERIES] = std::array::from_fn(|i| {
                    if i < rows {
                        &o_lat[at(i, h)..][..r]
                    } else {
                        &zeros[..]
                    }
                });
                let d = shared_row_dots(&x.w[row * r..(row + 1) * r], lat);
                for (i, v) in d.iter().take(rows).enumerate() {
                    o[(i * hn + h - heads.0) * dv + j] = O::store(*v);
                }
            }
        }
        scratch.q_lat = q_lat;
        scratch.o_lat = o_lat;
    }

    /// Query row `t` into `o` [heads · Dv]; `split`: each pass in parallel tasks, else all
    /// on this thread (a lone small row: no weight row to share, no fork worth its cost).
    fn attend_row<W: Elem, L: Elem, P: Elem, O: OutElem>(
        &self,
        t: usize,
        x: &Inputs<W, L, P>,
        o: &mut [O],
        scratch: &mut Scratch,
        split: bool,
    ) {
        // One task per pass unless split: no part is ever shorter than the whole.
        let min_len = if split { 1 } else { usize::MAX };
        let (n, dn, dv, r) = (self.heads, self.nope, self.v_dim, self.rank);
        let padded = n.next_multiple_of(QUERIES);
        let mut q_lat = std::mem::take(&mut scratch.q_lat);
        let mut o_lat = std::mem::take(&mut scratch.o_lat);
        // Heads padded with zero rows to whole groups of QUERIES.
        q_lat.clear();
        q_lat.resize(padded * r, 0.0);
        o_lat.clear();
        o_lat.resize(padded * r, 0.0);
        let row0 = t * n;
        let w_row = |row: usize| &x.w[row * r..(row + 1) * r];
        q_lat[..n * r]
            .par_chunks_mut(r.max(1))
            .with_min_len(min_len)
            .enumerate()
            .for_each(|(h, ql)| {
                let q_nope = &x.q[(row0 + h) * self.q_width..][..dn];
                weighted_rows(q_nope, |j| w_row(h * (dn + dv) + j), ql);
            });
        self.latent_attention(t, 1, (0, n), &q_lat, x, scratch, &mut o_lat, split);
        let lat = &o_lat[..];
        o.par_chunks_mut(dv)
            .with_min_len(min_len)
            .enumerate()
            .for_each(|(h, oh)| {
                let base = h * (dn + dv);
                for (j, d) in oh.iter_mut().enumerate() {
                    *d = O::store(dot(&lat[h * r..(h + 1) * r], w_row(base + dn + j)));
                }
            });
        scratch.q_lat = q_lat;
        scratch.o_lat = o_lat;
    }

    /// Heads `heads.0 .. heads.1` of rows `t0 .. t0 + rows` attend in latent space: query
    /// q < rows · hn (hn heads) is head heads.0 + q mod hn of row t0 + q / hn, the queries
    /// padded to a multiple of QUERIES with zero ones that see no keys; `q_lat` and `o_lat`
    /// [queries, rank]. Scores of each query's `q_lat` and rope part against the keys
    /// (key-major: each cache row read once for every query), softmax per query over the keys
    /// its row sees, then `o_lat` = the probability-weighted latent rows (each block's rows
    /// read once for every query). Every query's arithmetic is the same whatever else is
    /// computed beside it — a score is its own dot, a value sum its own lanes — so the bits
    /// never depend on the grouping; keys past a row's position are scored (they exist for
    /// the group's last row) and left out of its softmax and sums. `split`: each pass in
    /// parallel tasks, else all on this thread (the same per-element code and order, so the
    /// same bits).
    #[allow(clippy::too_many_arguments)]
    fn latent_attention<W: Elem, L: Elem, P: Elem>(
        &self,
        t0: usize,
        rows: usize,
        heads: (usize, usize),
        q_lat: &[f32],
        x: &Inputs<W, L, P>,
        scratch: &mut Scratch,
        o_lat: &mut [f32],
        split: bool,
    ) {
        let (n, dr, r) = (self.heads, self.rope, self.rank);
        let hn = heads.1 - heads.0;
        // Score columns: the real queries (query q is column q).
        let columns = rows * hn;
        let queries = columns.next_multiple_of(QUERIES);
        let latent = x.latent;
        let seen = |q: usize| {
            if q < columns {
                visible(x.pos[t0 + q / hn], self.keys)
            } else {
                0
            }
        };
        let Scratch {
            q_rope,
            scores,
            p,
            blocks,
            key,
            wide,
            ..
        } = scratch;
        q_rope.clear();
        q_rope.resize(queries * dr, 0.0);
        for i in 0..rows {
            let t = t0 + i;
            q_rope[i * hn * dr..][..hn * dr]
                .copy_from_slice(&x.q_pe[(t * n + heads.0) * dr..(t * n + heads.1) * dr]);
        }
        let q_rope = &q_rope[..];
        let s = (0..rows)
            .map(|i| visible(x.pos[t0 + i], self.keys))
            .max()
            .unwrap_or(0);
        // Scores key-major [s, columns]: each cache row is read once for all queries.
        scores.clear();
        scores.resize(s * columns, 0.0f32);
        // Keys per task: whole TASK_KEYS ranges on a long cache, fewer on a short one so that
        // every thread gets some (each score is its own dot: any split, the same bits).
        let per = if split {
            let threads = rayon::current_num_threads();
            TASK_KEYS.min(s.div_ceil(2 * threads).max(MIN_TASK_KEYS))
        } else {
            TASK_KEYS
        };
        let score_task = |key: &mut Vec<f32>, (c, sc): (usize, &mut [f32])| {
            key.resize(r + dr, 0.0);
            latent_scores(
                q_lat,
                q_rope,
                columns,
                latent,
                x.k_pe,
                c * per,
                key,
                self.scale,
                sc,
            );
        };
        if split {
            scores
                .par_chunks_mut(per * columns)
                .enumerate()
                .for_each_init(Vec::new, score_task);
        } else {
            for item in scores.chunks_mut(per * columns).enumerate() {
                score_task(key, item);
            }
        }
        // Probabilities query-major [queries, s], each over its own row's keys; padding
        // queries see none.
        p.clear();
        p.resize(queries * s, 0.0f32);
        let scores = &scores[..];
        let softmax_query = |(q, pq): (usize, &mut [f32])| {
            let sq = seen(q);
            if sq == 0 {
                return;
            }
            for (d, u) in pq.iter_mut().zip(0..sq) {
                *d = scores[u * columns + q];
            }
            softmax_in_place(&mut pq[..sq]);
        };
        if split && s * columns >= PARALLEL_SOFTMAX {
            p.par_chunks_mut(s.max(1))
                .enumerate()
                .for_each(softmax_query);
        } else {
            p.chunks_mut(s.max(1)).enumerate().for_each(softmax_query);
        }
        // Value sums: each 128-key block's totals for every query (the block's latent rows
        // read once, shared by the queries), then the totals in block order from +0.0 (a
        // query's blocks past its keys add +0.0, which leaves a sum started from +0.0 as it
        // is).
        let nblocks = s.div_ceil(REDUCE_BLOCK);
        blocks.clear();
        blocks.resize(nblocks * queries * r, 0.0f32);
        let p = &p[..];
        let groups = queries / QUERIES;
        // Block b's latent rows widened to f32 (once per task, or once per block on one thread).
        let widen = |wide: &mut Vec<f32>, b: usize| {
            let (b0, b1) = (b * REDUCE_BLOCK, ((b + 1) * REDUCE_BLOCK).min(s));
            wide.clear();
            wide.extend(latent[b0 * r..b1 * r].iter().map(|v| v.f()));
        };
        let group_totals = |wide: &[f32], b: usize, g: usize, tg: &mut [f32]| {
            let (b0, b1) = (b * REDUCE_BLOCK, ((b + 1) * REDUCE_BLOCK).min(s));
            let rows = Rows {
                values: wide,
                stride: r,
                offset: 0,
                width: r,
            };
            let coef: [&[f32]; QUERIES] = std::array::from_fn(|i| {
                let q = g * QUERIES + i;
                let end = seen(q).min(b1);
                if end > b0 {
                    &p[q * s + b0..q * s + end]
                } else {
                    &[]
                }
            });
            block_value_sums(coef, &rows, 0, split4(tg, r));
        };
        if r > 0 {
            if split {
                // One task per (block, group of QUERIES queries): a query's block total is
                // its own sum, so splitting by queries as well as blocks keeps every bit (and
                // gives a short cache's one block to every thread).
                blocks
                    .par_chunks_mut(QUERIES * r)
                    .enumerate()
                    .for_each_init(Vec::new, |wide, (i, tg)| {
                        let (b, g) = (i / groups, i % groups);
                        widen(wide, b);
                        group_totals(wide, b, g, tg);
                    });
            } else {
                for (b, tot) in blocks.chunks_mut(queries * r).enumerate() {
                    widen(wide, b);
                    for (g, tg) in tot.chunks_mut(QUERIES * r).enumerate() {
                        group_totals(wide, b, g, tg);
                    }
                }
            }
        }
        o_lat.fill(0.0);
        for tot in blocks.chunks(queries * r) {
            for (a, v) in o_lat.iter_mut().zip(tot) {
                *a += *v;
            }
        }
    }
}

/// Reads one value of every 64-byte line of `w`, in parallel chunks, so that the passes of a
/// decode row — per head, first the `q_nope` half of W, then after the attention the value
/// half — find W in cache: from memory, those scattered 18 KiB reads ran at a fifth of the
/// streaming speed (the op at the side-by-side model's shapes, weights not in cache: 72 →
/// 59 µs with this pass, `benches/mla_decode.rs`).
fn touch_lines<W: Elem>(w: &[W]) {
    const CHUNK: usize = 1 << 15;
    let step = (64 / std::mem::size_of::<W>()).max(1);
    w.par_chunks(CHUNK / std::mem::size_of::<W>().max(1))
        .for_each(|c| {
            let mut acc = 0.0f32;
            for v in c.iter().step_by(step) {
                acc += v.f();
            }
            std::hint::black_box(acc);
        });
}

/// The op's inputs, typed.
struct Inputs<'a, W, L, P> {
    q: &'a [f32],
    q_pe: &'a [f32],
    w: &'a [W],
    latent: &'a [L],
    k_pe: &'a [P],
    pos: &'a [u32],
}
