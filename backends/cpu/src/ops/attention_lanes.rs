//! The attention kernels of mla_prefill and mla_decode: [`QUERIES`] queries against each key
//! (scores), and the value sums of [`QUERIES`] queries over one 128-key block, each key or
//! value row loaded and widened once for all of them.
//!
//! Every output keeps exactly the contract's order (docs/numerics.md §4): a score is ONE
//! canonical dot (`lanes::block_dots` per 128-term block, block totals added in order from
//! +0.0); a value sum's block total puts key u of the block in lane u mod 16, each lane a
//! rounded multiply then a rounded add from +0.0, then the fixed lane tree. The loops are
//! compiled once per instruction set (`multiversion`) on plain 16-lane arrays, so the
//! accumulators stay in registers; the additions are the same in every clone.
use concord_core::numerics::reduce::{REDUCE_BLOCK, REDUCE_LANES};
use multiversion::multiversion;

use crate::elem::Elem;
use crate::lanes::block_dots;

/// Queries (or heads) that share each load of a key or value row.
pub(crate) const QUERIES: usize = 4;

const LANES: usize = REDUCE_LANES;
const BLOCK: usize = REDUCE_BLOCK;

/// Canonical dots of each query with one key (all of `key.len()` terms), key loaded once.
#[inline(always)]
fn dots_with_key(queries: [&[f32]; QUERIES], key: &[f32]) -> [f32; QUERIES] {
    let mut total = [0.0f32; QUERIES];
    for b in (0..key.len()).step_by(BLOCK) {
        let e = (b + BLOCK).min(key.len());
        let s = block_dots(&key[b..e], queries.map(|q| &q[b..e]));
        for r in 0..QUERIES {
            total[r] += s[r];
        }
    }
    total
}

/// Canonical dots of each query with one shared row of any element type (all of
/// `row.len()` terms: per 128-term block `lanes::block_dots`, block totals added in order
/// from +0.0), the row loaded and widened once for all queries.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn shared_row_dots<E: Elem>(row: &[E], queries: [&[f32]; QUERIES]) -> [f32; QUERIES] {
    let mut total = [0.0f32; QUERIES];
    for b in (0..row.len()).step_by(BLOCK) {
        let e = (b + BLOCK).min(row.len());
        let s = block_dots(&row[b..e], queries.map(|q| &q[b..e]));
        for r in 0..QUERIES {
            total[r] += s[r];
        }
    }
    total
}

/// Copies `src` widened to f32 into `dst` (same length).
#[inline(always)]
fn widen_into<E: Elem>(dst: &mut [f32], src: &[E]) {
    for (d, v) in dst.iter_mut().zip(src) {
        *d = v.f();
    }
}

/// Up to 16 values widened to f32, zeros after them; a whole 16 is one fixed-size loop
/// (one vector conversion).
#[inline(always)]
fn widen16<E: Elem>(src: &[E]) -> [f32; LANES] {
    let mut v = [0.0f32; LANES];
    if let Ok(full) = <&[E; LANES]>::try_from(src) {
        for l in 0..LANES {
            v[l] = full[l].f();
        }
    } else {
        widen_into(&mut v[..src.len()], src);
    }
    v
}

/// A key of mla_prefill: the concatenation `[kv[nope] ; k_pe[rope]]` of key row `u`.
pub(crate) struct ConcatKeys<'a, K, P> {
    /// Cache rows; key u's Dn nope values start at `u · stride + offset`.
    pub kv: &'a [K],
    pub stride: usize,
    pub offset: usize,
    pub nope: usize,
    /// Rope keys [S, Dr].
    pub k_pe: &'a [P],
    pub rope: usize,
}

/// `scores[r][u] = dot([q_nope ; q_pe]_r, [k_nope(u) ; k_pe(u)]) · scale` for keys
/// u < `scores[r].len()` (all the same length), each ONE canonical dot over the Dn + Dr
/// concatenation; `queries[r]` is query r's concatenation, `key` a scratch of Dn + Dr.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn concat_scores<K: Elem, P: Elem>(
    queries: [&[f32]; QUERIES],
    keys: &ConcatKeys<K, P>,
    key: &mut [f32],
    scale: f32,
    scores: [&mut [f32]; QUERIES],
) {
    let (dn, dr) = (keys.nope, keys.rope);
    let [s0, s1, s2, s3] = scores;
    for (u, ((o0, o1), (o2, o3))) in s0
        .iter_mut()
        .zip(s1.iter_mut())
        .zip(s2.iter_mut().zip(s3.iter_mut()))
        .enumerate()
    {
        let at = u * keys.stride + keys.offset;
        widen_into(&mut key[..dn], &keys.kv[at..at + dn]);
        widen_into(&mut key[dn..dn + dr], &keys.k_pe[u * dr..(u + 1) * dr]);
        let d = dots_with_key(queries, &key[..dn + dr]);
        (*o0, *o1, *o2, *o3) = (d[0] * scale, d[1] * scale, d[2] * scale, d[3] * scale);
    }
}

/// mla_decode's scores for keys `first .. first + out.len() / heads` and all heads:
/// `out[(u - first)·heads + h] = (dot(q_lat_h, latent[u]) + dot(q_pe_h, k_pe[u])) · scale`,
/// two canonical dots. `q_lat` [H', rank] and `q_pe` [H', rope] hold the heads padded with
/// zero rows to H' = a multiple of [`QUERIES`]; `key` is a scratch of rank + rope. Each
/// cache row is widened once for all heads.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn latent_scores<L: Elem, P: Elem>(
    q_lat: &[f32],
    q_pe: &[f32],
    heads: usize,
    latent: &[L],
    k_pe: &[P],
    first: usize,
    key: &mut [f32],
    scale: f32,
    out: &mut [f32],
) {
    let padded = heads.next_multiple_of(QUERIES);
    let rank = q_lat.len() / padded;
    let rope = q_pe.len() / padded;
    let (lat, pe) = key.split_at_mut(rank);
    let pe = &mut pe[..rope];
    for (i, o) in out.chunks_exact_mut(heads).enumerate() {
        let u = first + i;
        widen_into(lat, &latent[u * rank..(u + 1) * rank]);
        widen_into(pe, &k_pe[u * rope..(u + 1) * rope]);
        for g in (0..heads).step_by(QUERIES) {
            let ql: [&[f32]; QUERIES] =
                std::array::from_fn(|r| &q_lat[(g + r) * rank..(g + r + 1) * rank]);
            let qp: [&[f32]; QUERIES] =
                std::array::from_fn(|r| &q_pe[(g + r) * rope..(g + r + 1) * rope]);
            let a = dots_with_key(ql, lat);
            let b = dots_with_key(qp, pe);
            for (r, d) in o[g..(g + QUERIES).min(heads)].iter_mut().enumerate() {
                *d = (a[r] + b[r]) * scale;
            }
        }
    }
}

/// Value rows: row u is `values[u · stride + offset ..][..width]`.
pub(crate) struct Rows<'a, E> {
    pub values: &'a [E],
    pub stride: usize,
    pub offset: usize,
    pub width: usize,
}

/// One 128-key block of the value sums of [`QUERIES`] queries: for each r and column c,
/// `out[r][c] = B(Σ_i coef[r][i] · row(first + i)[c])` over i < `coef[r].len()` (≤ 128,
/// the query's visible keys in this block; the others take no part), B the within-block
/// canonical sum (lanes + tree, no final `+0.0 + …`). Every `out[r]` holds `rows.width`.
// Indexed loops: lane, query and column indices spell out the contract's order.
#[allow(clippy::needless_range_loop)]
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub(crate) fn block_value_sums<E: Elem>(
    coef: [&[f32]; QUERIES],
    rows: &Rows<E>,
    first: usize,
    out: [&mut [f32]; QUERIES],
) {
    let live = coef.map(<[f32]>::len);
    let all = live.iter().copied().min().unwrap_or(0);
    let any = live.iter().copied().max().unwrap_or(0);
    debug_assert!(any <= BLOCK);
    let width = rows.width;
    for c0 in (0..width).step_by(LANES) {
        let cw = (width - c0).min(LANES);
        // lanes[r][l]: lane l of query r, for the 16 columns c0 .. c0 + 16.
        let mut lanes = [[[0.0f32; LANES]; LANES]; QUERIES];
        for l in 0..LANES.min(any) {
            let mut acc = [[0.0f32; LANES]; QUERIES];
            for i in (l..any).step_by(LANES) {
                let at = (first + i) * rows.stride + rows.offset + c0;
                let v = widen16(&rows.values[at..at + cw]);
                if i < all {
                    for r in 0..QUERIES {
                        let p = coef[r][i];
                        for c in 0..LANES {
                            acc[r][c] += p * v[c];
                        }
                    }
                } else {
                    for r in 0..QUERIES {
                        if i < live[r] {
                            let p = coef[r][i];
                            for c in 0..LANES {
                                acc[r][c] += p * v[c];
                            }
                        }
                    }
                }
            }
            for r in 0..QUERIES {
                lanes[r][l] = acc[r];
            }
        }
        for r in 0..QUERIES {
            let t = &mut lanes[r];
            for s in [8, 4, 2, 1] {
                for j in 0..s {
                    for c in 0..LANES {
                        t[j][c] += t[j + s][c];
                    }
                }
            }
            out[r][c0..c0 + cw].copy_from_slice(&t[0][..cw]);
        }
    }
}
