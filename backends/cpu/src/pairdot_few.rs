//! `y = x · wᵀ` on the pair-dot tier (`pairdot`) for a few rows of x (2 ..= [`FEW_ROWS`]): a
//! speculative verification's rows, or the rows a routed expert gets in one decode step.
//!
//! `pairdot::tile` packs every panel of weight rows into pair order before its rows of x
//! meet it: with a few rows the packing (a store and a reload per 32 terms) costs as much as
//! the products, and rows past a multiple of 4 repeat the last one (5 rows computed 8). Here
//! each 32 weights are put into pair order in registers as they are loaded (`vpermw`, as the
//! one-row GEMV does), and the rows go in strips that fill the 16 accumulators of one
//! [`trees16`]: 4 rows × 4 weight rows, 2 × 8 or 1 × 16 (5 rows: a strip of 4 and one of 1;
//! 3 rows: a strip of 4 that repeats the last, so that the weights pass once). Every output
//! is the same canonical sum (one `vdpbf16ps` per 32 terms into its own accumulator, the
//! fixed lane tree, `fold` per block in block order), so the bits are those of every other
//! kernel of the tier.
use std::arch::x86_64::{__m512, __m512bh, _mm512_dpbf16_ps, _mm512_setzero_ps};

use concord_core::numerics::reduce::REDUCE_BLOCK;

use crate::blocked::Fold;
use crate::elem::OutElem;
use crate::pairdot::{load, natural32, packed_len, pair_order, trees16, PairWeight, STEP};

const BLOCK: usize = REDUCE_BLOCK;
/// Accumulators of one strip: one `trees16`.
const ACCUMULATORS: usize = 16;

/// Most rows of x this kernel takes; more go to `pairdot::tile`, whose packed panels then
/// meet enough rows to pay for their packing.
pub(crate) const FEW_ROWS: usize = 8;

/// Weights up to this size are taken to be in cache (the demo's largest is 128 KiB; a
/// 1024-wide model's 2 MiB and more come from memory). Weights from memory go to
/// `pairdot::tile`: its packing reads each weight row in one sequential run, where this
/// kernel's 4–16 rows read side by side streamed slower (2–4 rows against cold 1024 × 1024
/// BF16 weights, one task per core: 155–225 µs here, 113–160 µs packed;
/// `benches/gemm_speed.rs` with GEMM_COLD_SHAPES), as the one-row GEMV found (`gemv_pairdot`).
pub(crate) const CACHED_WEIGHT_BYTES: usize = 512 << 10;

/// Whether `m` rows of x against a weight of `w_bytes` bytes take this kernel.
pub(crate) fn takes(m: usize, w_bytes: usize) -> bool {
    (2..=FEW_ROWS).contains(&m) && w_bytes <= CACHED_WEIGHT_BYTES
}

/// Outputs (m, j) for m in `rows`, j in `cols` into `out` [.., ldo] at
/// `(m - rows.0)·ldo + (j - cols.0)`: x packed ([`pack_row`](crate::pairdot::pack_row),
/// `packed_len(k)` per row), w [n, k] in stored order. Strips of 4, 2 and 1 rows.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(crate) fn few_rows<W: PairWeight, O: OutElem, F: Fold>(
    xp: &[u16],
    k: usize,
    w: &[W],
    rows: (usize, usize),
    cols: (usize, usize),
    fold: &F,
    out: &mut [O],
    ldo: usize,
) {
    let mut m0 = rows.0;
    while m0 < rows.1 {
        let left = rows.1 - m0;
        let strip = Strip {
            xp,
            k,
            w,
            m0,
            rows: left.min(4),
            cols,
            fold,
        };
        let at = (m0 - rows.0) * ldo;
        // 3 rows: one strip of 4 repeating the last (one pass over the weights, not two).
        if left >= 3 {
            strip.run::<4, 4, O>(&mut out[at..], ldo);
        } else if left == 2 {
            strip.run::<2, 8, O>(&mut out[at..], ldo);
        } else {
            strip.run::<1, 16, O>(&mut out[at..], ldo);
        }
        m0 += strip.rows;
    }
}

/// Rows of x from `m0` (`rows` of them, ≤ the strip's R: the last repeated, not stored)
/// against the weight rows of `cols`.
struct Strip<'a, W, F> {
    xp: &'a [u16],
    k: usize,
    w: &'a [W],
    m0: usize,
    rows: usize,
    cols: (usize, usize),
    fold: &'a F,
}

impl<W: PairWeight, F: Fold> Strip<'_, W, F> {
    /// The strip's rows into `out` (row r at r·ldo), C weight rows at a time (R·C = 16); a
    /// last partial group of weight rows repeats its last row (not stored).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    fn run<const R: usize, const C: usize, O: OutElem>(&self, out: &mut [O], ldo: usize) {
        const { assert!(R * C == ACCUMULATORS) };
        let (k, kp) = (self.k, packed_len(self.k));
        let last = self.rows.min(R) - 1;
        let mut m = [0usize; R];
        for (r, mr) in m.iter_mut().enumerate() {
            *mr = self.m0 + r.min(last);
        }
        let x: [&[u16]; R] = std::array::from_fn(|r| &self.xp[m[r] * kp..][..kp]);
        let mut j0 = self.cols.0;
        while j0 < self.cols.1 {
            let c = (self.cols.1 - j0).min(C);
            let mut j = [0usize; C];
            for (q, jq) in j.iter_mut().enumerate() {
                *jq = j0 + q.min(c - 1);
            }
            let mut total = [0.0f32; ACCUMULATORS];
            for (kb, b) in (0..k).step_by(BLOCK).enumerate() {
                let sums = self.block::<R, C>(&x, &j, b);
                for (i, (t, s)) in total.iter_mut().zip(sums).enumerate() {
                    *t = self.fold.fold(m[i / C], j[i % C], kb, *t, s);
                }
            }
            for r in 0..=last {
                let o = &mut out[r * ldo + (j0 - self.cols.0)..][..c];
                for (d, s) in o.iter_mut().zip(&total[r * C..]) {
                    *d = O::store(*s);
                }
            }
            j0 += c;
        }
    }

    /// The canonical sums of the block of terms from `b` for the R × C outputs (x row r,
    /// weight row j[q]) as element r·C + q: per 32 terms each weight row's step loaded and
    /// put into pair order once, then one `vdpbf16ps` per row of x.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    fn block<const R: usize, const C: usize>(
        &self,
        x: &[&[u16]; R],
        j: &[usize; C],
        b: usize,
    ) -> [f32; ACCUMULATORS] {
        let e = (b + BLOCK).min(self.k);
        // Whole steps, then the block's partial last one (if any): one loop body with both
        // kinds of load kept the accumulators in memory.
        let whole = b + (e - b) / STEP * STEP;
        let mut acc = [_mm512_setzero_ps(); ACCUMULATORS];
        for c in (b..whole).step_by(STEP) {
            self.step::<R, C>(&mut acc, x, j, c, c + STEP);
        }
        if whole < e {
            self.step::<R, C>(&mut acc, x, j, whole, e);
        }
        trees16(acc)
    }

    /// Terms `c .. s` (one step, `s - c` ≤ 32) of every output into its accumulator.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    fn step<const R: usize, const C: usize>(
        &self,
        acc: &mut [__m512; ACCUMULATORS],
        x: &[&[u16]; R],
        j: &[usize; C],
        c: usize,
        s: usize,
    ) {
        let k = self.k;
        let mut xv = [bf16_zero(); R];
        for (v, row) in xv.iter_mut().zip(x) {
            *v = load(&row[c..]);
        }
        for (q, &jq) in j.iter().enumerate() {
            let wv = pair_order(natural32(&self.w[jq * k + c..jq * k + s]));
            for (r, xr) in xv.iter().enumerate() {
                acc[r * C + q] = _mm512_dpbf16_ps(acc[r * C + q], *xr, wv);
            }
        }
    }
}

/// A zero vector of 32 bf16 slots (the initial value of the x registers).
#[inline(always)]
fn bf16_zero() -> __m512bh {
    bytemuck::cast::<__m512, __m512bh>(bytemuck::cast([0.0f32; 16]))
}
