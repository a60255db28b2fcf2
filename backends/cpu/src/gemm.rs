//! `y = x · wᵀ` cores shared by matmul, block_fp8_matmul and moe_experts.
//!
//! Every output element is one call of the same sequential code (a canonical dot, or the
//! block-scaled FP8 sum), so how the work is split across threads never changes a bit.
//! Work is split into tiles of weight rows; each tile is used for every row of x while it
//! is in cache. One row of x with FP8 weights (decode) goes to `gemv::gemv_fp8`.
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::canonical::{block_dot, dot, dot2};
use crate::elem::{Elem, OutElem};
use crate::gemv::gemv_fp8;

/// Weight rows per parallel task.
const TILE: usize = 16;

/// `out[m·n + j] = O::store(dot(x[m·k..], w[j·k..]))` for x [M, k], w [n, k], out [M, n].
pub(crate) fn gemm<W: Elem, O: OutElem>(x: &[f32], k: usize, w: &[W], n: usize, out: &mut [O]) {
    let m = out.len().checked_div(n).unwrap_or(0);
    debug_assert!(x.len() == m * k && w.len() == n * k);
    if m == 0 || n == 0 {
        return;
    }
    let row = |mi: usize| &x[mi * k..(mi + 1) * k];
    if m == 1 {
        out.par_chunks_mut(TILE).enumerate().for_each(|(t, o)| {
            for (i, v) in o.iter_mut().enumerate() {
                let j = t * TILE + i;
                *v = O::store(dot(row(0), &w[j * k..(j + 1) * k]));
            }
        });
        return;
    }
    // Column tiles; inside a tile, rows of x two at a time against each weight row.
    let tiles: Vec<Vec<O>> = (0..n.div_ceil(TILE))
        .into_par_iter()
        .map(|t| {
            let cols = t * TILE..((t + 1) * TILE).min(n);
            let width = cols.len();
            let mut v = vec![O::store(0.0); m * width];
            for mi in (0..m).step_by(2) {
                for (c, j) in cols.clone().enumerate() {
                    let wr = &w[j * k..(j + 1) * k];
                    if mi + 1 < m {
                        let (y0, y1) = dot2(row(mi), row(mi + 1), wr);
                        v[mi * width + c] = O::store(y0);
                        v[(mi + 1) * width + c] = O::store(y1);
                    } else {
                        v[mi * width + c] = O::store(dot(row(mi), wr));
                    }
                }
            }
            v
        })
        .collect();
    scatter_tiles(&tiles, m, n, out);
}

/// Copies column tiles (each [m, width] row-major) into out [m, n].
fn scatter_tiles<O: OutElem>(tiles: &[Vec<O>], m: usize, n: usize, out: &mut [O]) {
    for (t, v) in tiles.iter().enumerate() {
        let c0 = t * TILE;
        let width = v.len() / m;
        for mi in 0..m {
            out[mi * n + c0..mi * n + c0 + width].copy_from_slice(&v[mi * width..(mi + 1) * width]);
        }
    }
}

/// The 256 e4m3fn codes decoded by `concord_core::convert::e4m3_to_f32`: a lookup is the
/// fastest scalar decode where a whole tile is widened once and reused for many rows of x
/// (the one-row path decodes in registers instead, `gemv::gemv_fp8`).
fn e4m3_table() -> &'static [f32; 256] {
    static TABLE: OnceLock<[f32; 256]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|b| (b as u8).f()))
}

/// Decodes e4m3fn codes into f32 (exact; the same values as `Elem for u8`).
pub(crate) fn decode_e4m3(codes: &[u8]) -> Vec<f32> {
    let table = e4m3_table();
    codes.iter().map(|&b| table[b as usize]).collect()
}

/// A block-scaled FP8 weight [n, k] (spec §6.2).
pub(crate) struct Fp8Weight<'a> {
    /// e4m3 codes [n, k].
    pub codes: &'a [u8],
    /// Block scales [⌈n/bn⌉, ⌈k/128⌉].
    pub scales: &'a [f32],
    /// Rows per scale block (`block[0]`).
    pub block_rows: usize,
}

/// The block-scaled FP8 GEMM of spec §6.6 in the contract's order:
/// `y[m,j] = A(Σ_kb (blocksum_kb(xq[m]·w[j]) · xs[m,kb]) · ws[j/bn, kb])`, each block sum in
/// the canonical within-block order, the outer sum in kb order from +0.0.
///
/// `xq` holds the activations' e4m3 codes [M, k], `xs` [M, ⌈k/128⌉] their scales; out
/// [M, n]. One row (decode) goes to `gemv_fp8`; several rows decode a tile of weight rows
/// once per task and use it for every row of x.
pub(crate) fn gemm_fp8<O: OutElem>(
    xq: &[u8],
    xs: &[f32],
    k: usize,
    w: &Fp8Weight,
    n: usize,
    out: &mut [O],
) {
    const B: usize = concord_ops::FP8_ACT_BLOCK;
    let m = out.len().checked_div(n).unwrap_or(0);
    let kb = k.div_ceil(B);
    debug_assert!(xq.len() == m * k && xs.len() == m * kb && w.codes.len() == n * k);
    if m == 0 || n == 0 {
        return;
    }
    if m == 1 {
        gemv_fp8(xq, xs, k, w, out);
        return;
    }
    let xq = decode_e4m3(xq);
    let elem = |mi: usize, j: usize, wrow: &[f32]| -> f32 {
        let x = &xq[mi * k..(mi + 1) * k];
        let srow = &w.scales[(j / w.block_rows) * kb..(j / w.block_rows + 1) * kb];
        let mut acc = 0.0f32;
        for (b, (xb, wb)) in x.chunks(B).zip(wrow.chunks(B)).enumerate() {
            acc += (block_dot(xb, wb) * xs[mi * kb + b]) * srow[b];
        }
        acc
    };
    // Decode one tile of weight rows at a time, then use it for every row of x.
    let tiles: Vec<Vec<O>> = (0..n.div_ceil(TILE))
        .into_par_iter()
        .map_init(Vec::new, |dec: &mut Vec<f32>, t| {
            let cols = t * TILE..((t + 1) * TILE).min(n);
            dec.clear();
            let table = e4m3_table();
            dec.extend(
                w.codes[cols.start * k..cols.end * k]
                    .iter()
                    .map(|&c| table[c as usize]),
            );
            let mut v = Vec::with_capacity(m * cols.len());
            for mi in 0..m {
                for (i, j) in cols.clone().enumerate() {
                    v.push(O::store(elem(mi, j, &dec[i * k..(i + 1) * k])));
                }
            }
            v
        })
        .collect();
    scatter_tiles(&tiles, m, n, out);
}
