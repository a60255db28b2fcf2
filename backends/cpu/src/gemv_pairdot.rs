//! Decode's `y = x · wᵀ` (one row of x) on the pair-dot tier (`pairdot`): x is packed into
//! pair order once per op; each weight row streams once in its stored order, every 32 terms
//! widened to bf16 (BF16 as is, e4m3 in registers) and put into pair order by one `vpermw`,
//! [`ROWS`] rows sharing each load of x. The additions are `pairdot`'s, hence the canonical
//! ones; the callers check the operands as for prefill.
use std::arch::x86_64::{__m512, _mm512_dpbf16_ps, _mm512_setzero_ps};

use concord_core::numerics::reduce::REDUCE_BLOCK;

use crate::blocked::{tree, Fold, Lanes};
use crate::elem::OutElem;
use crate::pairdot::{load, natural32, pair_order, PairWeight, STEP};

const BLOCK: usize = REDUCE_BLOCK;
/// Weight rows whose dots advance together, sharing each load of x.
pub(crate) const ROWS: usize = 4;

/// Outputs j0 .. j0 + out.len() of the one-row product: packed x `xp` (`packed_len(k)`)
/// against weight rows j of `w` [n, k], each block's sum folded by `fold` (row 0 of x).
/// A last group of fewer than [`ROWS`] rows repeats its last row (computed, not stored).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(crate) fn rows<W: PairWeight, O: OutElem, F: Fold>(
    xp: &[u16],
    k: usize,
    w: &[W],
    j0: usize,
    out: &mut [O],
    fold: &F,
) {
    for (g, o) in out.chunks_mut(ROWS).enumerate() {
        let first = j0 + g * ROWS;
        let j: [usize; ROWS] = std::array::from_fn(|r| first + r.min(o.len() - 1));
        let wr: [&[W]; ROWS] = j.map(|j| &w[j * k..(j + 1) * k]);
        let mut total = [0.0f32; ROWS];
        for (kb, b) in (0..k).step_by(BLOCK).enumerate() {
            let e = (b + BLOCK).min(k);
            let z = _mm512_setzero_ps();
            let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
            for c in (b..e).step_by(STEP) {
                let s = (c + STEP).min(e);
                let x = load(&xp[c..]);
                a0 = _mm512_dpbf16_ps(a0, x, pair_order(natural32(&wr[0][c..s])));
                a1 = _mm512_dpbf16_ps(a1, x, pair_order(natural32(&wr[1][c..s])));
                a2 = _mm512_dpbf16_ps(a2, x, pair_order(natural32(&wr[2][c..s])));
                a3 = _mm512_dpbf16_ps(a3, x, pair_order(natural32(&wr[3][c..s])));
            }
            let t = |v: __m512| tree(&bytemuck::cast::<__m512, Lanes>(v));
            let sums = [t(a0), t(a1), t(a2), t(a3)];
            for r in 0..ROWS {
                total[r] = fold.fold(0, j[r], kb, total[r], sums[r]);
            }
        }
        for (d, t) in o.iter_mut().zip(total) {
            *d = O::store(t);
        }
    }
}
