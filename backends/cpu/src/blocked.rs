//! Prefill's `y = x · wᵀ` (several rows of x): register-blocked micro-kernels that compute
//! an [`MR`] × [`NR`] block of outputs at once, each output still the contract's sequential
//! canonical dot (docs/numerics.md §4), bit for bit.
//!
//! Per 128-term block, every output of the micro-kernel holds 16 lane accumulators (one
//! AVX-512 register, two AVX2 or four SSE/NEON registers); each 16 terms of a weight row are
//! loaded and widened once (BF16 by a 16-bit shift, e4m3 by integer bit arithmetic — no
//! table, no temporary tile) for all [`MR`] rows of x, and each 16 terms of a row of x once
//! for all [`NR`] weight rows. Lane j adds the rounded products of terms j, j+16, … in order
//! from +0.0 (multiply, then add: Rust never fuses them), then the fixed tree
//! `lane[j] += lane[j+s]` for s = 8, 4, 2, 1 gives the block's sum, which the caller's
//! `fold` adds to the output's running total in block order (a plain `+` for BF16/F32
//! weights, the block-scaled sum of spec §6.6 for FP8). Which rows share a micro-kernel, the
//! instruction set and the thread split change the schedule, never an output's additions.
//!
//! Where the CPU has AVX-512 (checked at run time) the kernel is `blocked_avx512`'s, written
//! with explicit 16-lane registers; elsewhere it is this file's portable kernel, compiled once
//! per instruction set and picked at run time (`multiversion`: AVX-512, AVX2+FMA, NEON, and
//! the baseline), as `gemv` is. Edges (fewer than 4 rows of x or weight rows left) run the
//! same 4 × 4 kernel on repeated rows and store only the real outputs.
use concord_core::numerics::reduce::{REDUCE_BLOCK, REDUCE_LANES};
use multiversion::multiversion;
use rayon::prelude::*;

use crate::elem::{Elem, OutElem};
use crate::gemv::on_pool;

const BLOCK: usize = REDUCE_BLOCK;
pub(crate) const LANES: usize = REDUCE_LANES;
const _: () = assert!(BLOCK == 128 && LANES == 16);
const _: () = assert!(MR == 4 && NR == 4, "micro names its 4 × 4 accumulators");

/// Rows of x per micro-kernel.
pub(crate) const MR: usize = 4;
/// Weight rows per micro-kernel: MR·NR accumulators + NR weight vectors + one x vector fit
/// AVX-512's 32 registers.
pub(crate) const NR: usize = 4;
/// Multiply-adds below which an op runs as one task: splitting costs more than the work (a
/// fork and join of two threads is several µs; 2¹⁸ on the pair-dot tier is about as long —
/// 2¹⁶ forked the 4-row verification matmuls of the demo model).
const SERIAL_WORK: usize = 1 << 18;
/// Tasks per thread, so that a core slowed by other load is balanced out.
const TASKS_PER_THREAD: usize = 4;

/// The 16 lane accumulators of one output.
pub(crate) type Lanes = [f32; LANES];

/// The fixed lane tree `lane[j] += lane[j+s]` for s = 8, 4, 2, 1; returns lane 0.
#[inline(always)]
pub(crate) fn tree(v: &Lanes) -> f32 {
    let mut h8 = [0.0f32; 8];
    for j in 0..8 {
        h8[j] = v[j] + v[j + 8];
    }
    let mut h4 = [0.0f32; 4];
    for j in 0..4 {
        h4[j] = h8[j] + h8[j + 4];
    }
    (h4[0] + h4[2]) + (h4[1] + h4[3])
}

/// The 16 values `s[..16]` widened to f32.
#[inline(always)]
fn widen<E: Elem>(s: &[E]) -> Lanes {
    let s: &[E; LANES] = s[..LANES].try_into().expect("16 terms");
    let mut v = [0.0f32; LANES];
    for l in 0..LANES {
        v[l] = s[l].f();
    }
    v
}

/// The fewer than 16 values of `s` widened to f32 in lanes 0 .. s.len(), +0.0 after.
#[inline(always)]
fn widen_tail<E: Elem>(s: &[E]) -> Lanes {
    let mut v = [0.0f32; LANES];
    for (d, e) in v.iter_mut().zip(s) {
        *d = e.f();
    }
    v
}

/// `acc + x·w` lane by lane: one rounded product, then one rounded add (never fused).
#[inline(always)]
fn mul_add(mut acc: Lanes, x: Lanes, w: Lanes) -> Lanes {
    for l in 0..LANES {
        acc[l] += x[l] * w[l];
    }
    acc
}

/// How a block's canonical sum joins its output's total: `fold(m, j, kb, total, sum)` for
/// row m of x, weight row j and block kb returns the new total (which starts at +0.0).
pub(crate) trait Fold: Sync {
    /// The new running total of output (m, j) after block kb's sum.
    fn fold(&self, m: usize, j: usize, kb: usize, total: f32, sum: f32) -> f32;

    /// The total after the sums of blocks kb0, kb0 + 1, … (`sums`, in order), one `fold`
    /// each; folds with per-output lookups override it to do them once per run.
    #[inline(always)]
    fn fold_run(&self, m: usize, j: usize, kb0: usize, total: f32, sums: &[f32]) -> f32 {
        sums.iter()
            .enumerate()
            .fold(total, |t, (q, s)| self.fold(m, j, kb0 + q, t, *s))
    }

    /// [`fold`](Fold::fold) for the [`MR`] × [`NR`] outputs (m[r], j[q]) of a micro-kernel
    /// at once, element r·NR + q of `total` and `sums`: the same operations per output,
    /// written so that the compiler can run them as vector operations.
    #[inline(always)]
    fn fold_tile(
        &self,
        m: [usize; MR],
        j: [usize; NR],
        kb: usize,
        total: &mut [f32; MR * NR],
        sums: &[f32; MR * NR],
    ) {
        for (i, (t, s)) in total.iter_mut().zip(sums).enumerate() {
            *t = self.fold(m[i / NR], j[i % NR], kb, *t, *s);
        }
    }
}

/// Block sums added in order: the canonical dot.
pub(crate) struct PlainSum;

impl Fold for PlainSum {
    #[inline(always)]
    fn fold(&self, _: usize, _: usize, _: usize, total: f32, sum: f32) -> f32 {
        total + sum
    }

    #[inline(always)]
    fn fold_tile(
        &self,
        _: [usize; MR],
        _: [usize; NR],
        _: usize,
        total: &mut [f32; MR * NR],
        sums: &[f32; MR * NR],
    ) {
        for (t, s) in total.iter_mut().zip(sums) {
            *t += *s;
        }
    }
}

/// The [`MR`] × [`NR`] outputs `dot(x[r], w[q])` of rows `m[r]` of x and weight rows `j[q]`,
/// every one with the canonical additions, folded per block by `fold`.
///
/// The 16 accumulators are 16 separate variables, not one array: LLVM keeps each in a
/// register, where it left a [4][4][16] array in memory and vectorised across accumulators
/// with gathers (measured 15× slower than the 4-wide dot this replaces).
#[inline(always)]
fn micro<W: Elem, F: Fold>(
    x: [&[f32]; MR],
    w: [&[W]; NR],
    m: [usize; MR],
    j: [usize; NR],
    fold: &F,
) -> [[f32; NR]; MR] {
    let k = x[0].len();
    let mut total = [[0.0f32; NR]; MR];
    for (kb, b) in (0..k).step_by(BLOCK).enumerate() {
        let e = (b + BLOCK).min(k);
        let full = e - (e - b) % LANES;
        let z = [0.0f32; LANES];
        let (mut a00, mut a01, mut a02, mut a03) = (z, z, z, z);
        let (mut a10, mut a11, mut a12, mut a13) = (z, z, z, z);
        let (mut a20, mut a21, mut a22, mut a23) = (z, z, z, z);
        let (mut a30, mut a31, mut a32, mut a33) = (z, z, z, z);
        // One chunk of 16 terms: rows x0..x3 of x against weights w0..w3, all widened.
        macro_rules! chunk {
            ($x0:expr, $x1:expr, $x2:expr, $x3:expr, $w0:expr, $w1:expr, $w2:expr, $w3:expr) => {
                let (w0, w1, w2, w3) = ($w0, $w1, $w2, $w3);
                let x0 = $x0;
                a00 = mul_add(a00, x0, w0);
                a01 = mul_add(a01, x0, w1);
                a02 = mul_add(a02, x0, w2);
                a03 = mul_add(a03, x0, w3);
                let x1 = $x1;
                a10 = mul_add(a10, x1, w0);
                a11 = mul_add(a11, x1, w1);
                a12 = mul_add(a12, x1, w2);
                a13 = mul_add(a13, x1, w3);
                let x2 = $x2;
                a20 = mul_add(a20, x2, w0);
                a21 = mul_add(a21, x2, w1);
                a22 = mul_add(a22, x2, w2);
                a23 = mul_add(a23, x2, w3);
                let x3 = $x3;
                a30 = mul_add(a30, x3, w0);
                a31 = mul_add(a31, x3, w1);
                a32 = mul_add(a32, x3, w2);
                a33 = mul_add(a33, x3, w3);
            };
        }
        for c in (b..full).step_by(LANES) {
            chunk!(
                widen(&x[0][c..]),
                widen(&x[1][c..]),
                widen(&x[2][c..]),
                widen(&x[3][c..]),
                widen(&w[0][c..]),
                widen(&w[1][c..]),
                widen(&w[2][c..]),
                widen(&w[3][c..])
            );
        }
        if full < e {
            // Lanes past the tail add 0·0 = +0.0 to a lane that is +0.0 or a sum, which
            // changes nothing: a sum started from +0.0 is never -0.0.
            chunk!(
                widen_tail(&x[0][full..e]),
                widen_tail(&x[1][full..e]),
                widen_tail(&x[2][full..e]),
                widen_tail(&x[3][full..e]),
                widen_tail(&w[0][full..e]),
                widen_tail(&w[1][full..e]),
                widen_tail(&w[2][full..e]),
                widen_tail(&w[3][full..e])
            );
        }
        let sums = [
            [tree(&a00), tree(&a01), tree(&a02), tree(&a03)],
            [tree(&a10), tree(&a11), tree(&a12), tree(&a13)],
            [tree(&a20), tree(&a21), tree(&a22), tree(&a23)],
            [tree(&a30), tree(&a31), tree(&a32), tree(&a33)],
        ];
        for r in 0..MR {
            for q in 0..NR {
                total[r][q] = fold.fold(m[r], j[q], kb, total[r][q], sums[r][q]);
            }
        }
    }
    total
}

/// Outputs (m, j) for m in `rows`, j in `cols` into `out` [.., ldo] at
/// `(m - origin.0)·ldo + (j - origin.1)`, by `kernel(x rows, weight rows, m, j)`, weight row j
/// being `w[(j - w_row0)·k ..]`: weight
/// panels of [`NR`] rows, and inside each, rows of x [`MR`] at a time, so a panel stays in
/// L1 while it meets every row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn panels<W: Elem, O: OutElem>(
    x: &[f32],
    k: usize,
    (w, w_row0): (&[W], usize),
    rows: (usize, usize),
    cols: (usize, usize),
    (out, origin, ldo): (&mut [O], (usize, usize), usize),
    kernel: impl Fn([&[f32]; MR], [&[W]; NR], [usize; MR], [usize; NR]) -> [[f32; NR]; MR],
) {
    let mut j0 = cols.0;
    while j0 < cols.1 {
        // A partial panel repeats its last weight row (computed, not stored), so one
        // micro-kernel shape serves every edge; likewise a partial group of rows of x.
        let c = (cols.1 - j0).min(NR);
        let j: [usize; NR] = std::array::from_fn(|q| j0 + q.min(c - 1));
        let wr: [&[W]; NR] = j.map(|j| &w[(j - w_row0) * k..(j - w_row0 + 1) * k]);
        let mut m0 = rows.0;
        while m0 < rows.1 {
            let r = (rows.1 - m0).min(MR);
            let m: [usize; MR] = std::array::from_fn(|i| m0 + i.min(r - 1));
            let xr: [&[f32]; MR] = m.map(|m| &x[m * k..(m + 1) * k]);
            let v = kernel(xr, wr, m, j);
            for (i, vr) in v.iter().enumerate().take(r) {
                let o = &mut out[(m0 + i - origin.0) * ldo + (j0 - origin.1)..][..c];
                for (d, s) in o.iter_mut().zip(vr) {
                    *d = O::store(*s);
                }
            }
            m0 += r;
        }
        j0 += c;
    }
}

/// [`panels`] on the portable kernel, compiled per instruction set.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn tile_portable<W: Elem, O: OutElem, F: Fold>(
    x: &[f32],
    k: usize,
    w: &[W],
    rows: (usize, usize),
    cols: (usize, usize),
    fold: &F,
    out: &mut [O],
    ldo: usize,
) {
    panels(
        x,
        k,
        (w, 0),
        rows,
        cols,
        (out, (rows.0, cols.0), ldo),
        |xr, wr, m, j| micro(xr, wr, m, j, fold),
    )
}

/// All of `x · wᵀ` on the portable kernel, on this thread (for the crate's tests).
pub(crate) fn gemm_portable<W: Elem>(x: &[f32], k: usize, w: &[W], n: usize) -> Vec<f32> {
    let m = x.len().checked_div(k).unwrap_or(0);
    let mut out = vec![0.0f32; m * n];
    tile_portable(x, k, w, (0, m), (0, n), &PlainSum, &mut out, n);
    out
}

/// A weight element type the blocked kernels take.
#[cfg(target_arch = "x86_64")]
pub(crate) use crate::blocked_avx512::Load16 as Weight;

/// A weight element type the blocked kernels take.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) trait Weight: Elem {}
#[cfg(not(target_arch = "x86_64"))]
impl<E: Elem> Weight for E {}

/// [`panels`] on the best kernel for this CPU and weight type: the explicit AVX-512 one for
/// BF16/F32 weights where the CPU has AVX-512, the portable one otherwise.
#[allow(clippy::too_many_arguments)]
fn tile<W: Weight, O: OutElem, F: Fold>(
    x: &[f32],
    k: usize,
    w: &[W],
    rows: (usize, usize),
    cols: (usize, usize),
    fold: &F,
    out: &mut [O],
    ldo: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if W::EXPLICIT {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return crate::blocked_avx512::tile(simd, x, k, w, rows, cols, fold, out, ldo);
        }
    }
    tile_portable(x, k, w, rows, cols, fold, out, ldo)
}

/// `out[m·n + j] = O::store(fold over blocks of dot(x[m], w[j]))` for x [M, k], w [n, k],
/// out [M, n].
pub(crate) fn gemm_blocked<W: Weight, O: OutElem, F: Fold>(
    x: &[f32],
    k: usize,
    w: &[W],
    n: usize,
    out: &mut [O],
    fold: &F,
) {
    debug_assert!(x.len() == out.len().checked_div(n).unwrap_or(0) * k && w.len() == n * k);
    split_tiles(k, n, out, MR, |rows, cols, o, ldo| {
        tile(x, k, w, rows, cols, fold, o, ldo)
    });
}

/// Splits out [M, n] (dots of k terms) over threads: `tile(rows, cols, out, ldo)` computes
/// outputs (m, j) for m in rows, j in cols into `out` [.., ldo] from `(rows.0, cols.0)`.
/// Many rows (at least `min_task_rows` for every task): each task takes whole rows of out (no
/// allocation); fewer: each task takes a tile of weight rows for every row of x, and the
/// tiles are copied into place. A tile kernel that prepares each weight panel (the pair-dot
/// tier packs it) asks for more rows per task, so that the preparation is shared by more
/// rows of x.
pub(crate) fn split_tiles<O: OutElem>(
    k: usize,
    n: usize,
    out: &mut [O],
    min_task_rows: usize,
    tile: impl Fn((usize, usize), (usize, usize), &mut [O], usize) + Sync,
) {
    let m = out.len().checked_div(n).unwrap_or(0);
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let tasks = threads * TASKS_PER_THREAD;
    if threads <= 1 || m.saturating_mul(n).saturating_mul(k.max(1)) <= SERIAL_WORK {
        on_pool(|| tile((0, m), (0, n), out, n));
    } else if m >= min_task_rows.max(MR) * tasks {
        let per = m.div_ceil(tasks).next_multiple_of(MR);
        out.par_chunks_mut(per * n).enumerate().for_each(|(t, o)| {
            let m0 = t * per;
            tile((m0, m0 + o.len() / n), (0, n), o, n)
        });
    } else {
        let width = n.div_ceil(tasks).next_multiple_of(NR);
        let tiles: Vec<Vec<O>> = (0..n.div_ceil(width))
            .into_par_iter()
            .map(|t| {
                let cols = (t * width, ((t + 1) * width).min(n));
                let mut v = vec![O::store(0.0); m * (cols.1 - cols.0)];
                tile((0, m), cols, &mut v, cols.1 - cols.0);
                v
            })
            .collect();
        for (t, v) in tiles.iter().enumerate() {
            let c0 = t * width;
            let cw = v.len() / m;
            for (mi, src) in v.chunks_exact(cw).enumerate() {
                out[mi * n + c0..mi * n + c0 + cw].copy_from_slice(src);
            }
        }
    }
}
