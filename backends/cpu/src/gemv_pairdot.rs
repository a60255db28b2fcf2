//! Decode's `y = x · wᵀ` (one row of x) on the pair-dot tier (`pairdot`): x is packed into
//! pair order once per op; each weight row streams once in its stored order, every 32 terms
//! widened to bf16 (BF16 as is, e4m3 in registers) and put into pair order by one `vpermw`.
//! The additions are `pairdot`'s, hence the canonical ones; the callers check the operands
//! as for prefill.
//!
//! One row at a time, not several sharing each load of x (x stays in L1 either way): with
//! four rows interleaved, weights not in cache streamed at a third of the speed on the
//! development machine (AMD EPYC, 2 threads: 6 GB/s against 15–20 GB/s for one row at a
//! time), which made the model's decode step twice as slow as the f32 kernel it replaced.
use std::arch::x86_64::{__m512, _mm512_dpbf16_ps, _mm512_setzero_ps};

use concord_core::numerics::reduce::REDUCE_BLOCK;

use crate::blocked::{tree, Fold, Lanes};
use crate::elem::OutElem;
use crate::pairdot::{load, natural32, pair_order, PairWeight, STEP};

const BLOCK: usize = REDUCE_BLOCK;
/// Outputs j0 .. j0 + out.len() of the one-row product: packed x `xp` (`packed_len(k)`)
/// against weight rows j of `w` [n, k], each block's sum folded by `fold` (row 0 of x).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(crate) fn rows<W: PairWeight, O: OutElem, F: Fold>(
    xp: &[u16],
    k: usize,
    w: &[W],
    j0: usize,
    out: &mut [O],
    fold: &F,
) {
    for (i, d) in out.iter_mut().enumerate() {
        let j = j0 + i;
        let wr = &w[j * k..(j + 1) * k];
        let mut total = 0.0f32;
        for (kb, b) in (0..k).step_by(BLOCK).enumerate() {
            let e = (b + BLOCK).min(k);
            let mut a = _mm512_setzero_ps();
            for c in (b..e).step_by(STEP) {
                let s = (c + STEP).min(e);
                a = _mm512_dpbf16_ps(a, load(&xp[c..]), pair_order(natural32(&wr[c..s])));
            }
            total = fold.fold(0, j, kb, total, tree(&bytemuck::cast::<__m512, Lanes>(a)));
        }
        *d = O::store(total);
    }
}
