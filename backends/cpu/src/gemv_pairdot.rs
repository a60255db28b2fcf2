//! Decode's `y = x · wᵀ` (one row of x) on the pair-dot tier (`pairdot`): x is packed into
//! pair order once per op; each weight row streams once in its stored order, every 32 terms
//! widened to bf16 (BF16 as is, e4m3 in registers) and put into pair order (one `vpermw`;
//! e4m3 with AVX-512 VBMI: `e4m3_pairs`, 64 codes at a time). The additions are `pairdot`'s,
//! hence the canonical ones; the callers check the operands as for prefill.
//!
//! One row at a time, not several sharing each load of x (x stays in L1 either way): with
//! four rows interleaved, weights not in cache streamed at a third of the speed on the
//! development machine (AMD EPYC, 2 threads: 6 GB/s against 15–20 GB/s for one row at a
//! time), which made the model's decode step twice as slow as the f32 kernel it replaced.
//!
//! Each block's lane tree runs as soon as its products are in: short dependency chains
//! between the loads keep more cache misses in flight than trees over 16 blocks at once
//! (`pairdot::trees16`), which streamed BF16 weights 20–40 % slower. The e4m3 kernel's block
//! sums are folded 16 at a time (`Fold::fold_run`: the scale lookup once per run, where
//! one fold call per block divided by the scale block's rows every time) and its whole
//! blocks are fixed-size arrays; with the 32-codes-at-a-time decode, the scalar tree and a
//! fold call per block it was compute-bound at 11 GB/s on the development machine.
use std::arch::x86_64::{__m512, _mm512_dpbf16_ps, _mm512_setzero_ps};

use concord_core::numerics::reduce::REDUCE_BLOCK;

use crate::blocked::{tree, Fold, Lanes};
use crate::e4m3_pairs::{pairs64, pairs_last, CODES};
use crate::elem::OutElem;
use crate::pairdot::{load, natural32, pair_order, PairWeight, STEP};

const BLOCK: usize = REDUCE_BLOCK;
/// Block sums folded in one run.
const GROUP: usize = 16;

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
    // BF16 weights take `rows_bf16`; this generic loop serves e4m3 weights where the CPU
    // has no VBMI.
    for (i, d) in out.iter_mut().enumerate() {
        let j = j0 + i;
        let wr = &w[j * k..(j + 1) * k];
        let mut total = 0.0f32;
        for (kb, b) in (0..k).step_by(BLOCK).enumerate() {
            total = fold.fold(0, j, kb, total, block_sum(xp, wr, b));
        }
        *d = O::store(total);
    }
}

/// The canonical sum of the block of terms that starts at `b` (whole or the row's last):
/// one `vdpbf16ps` per 32 terms, then the fixed tree.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn block_sum<W: PairWeight>(xp: &[u16], wr: &[W], b: usize) -> f32 {
    let e = (b + BLOCK).min(wr.len());
    let mut a = _mm512_setzero_ps();
    for c in (b..e).step_by(STEP) {
        let s = (c + STEP).min(e);
        a = _mm512_dpbf16_ps(a, load(&xp[c..]), pair_order(natural32(&wr[c..s])));
    }
    tree(&bytemuck::cast::<__m512, Lanes>(a))
}

/// [`rows`] for BF16 weights: whole blocks as fixed-size arrays and two blocks' accumulators
/// in flight at once, so that their chains of four dependent `vdpbf16ps` interleave; each
/// block's tree and fold in block order as in [`rows`], hence the same bits. Whole-model
/// decode 2.5 % faster (bf16, paired runs, docs/benchmarks.md); one thread streaming a cold
/// 16384 × 1024 matrix 32.5 → 37.0 GB/s.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(crate) fn rows_bf16<O: OutElem, F: Fold>(
    xp: &[u16],
    k: usize,
    w: &[u16],
    j0: usize,
    out: &mut [O],
    fold: &F,
) {
    let full = k / BLOCK;
    let block = |wr: &[u16], kb: usize| {
        let x: &[u16; BLOCK] = first_block(&xp[kb * BLOCK..]);
        let wb: &[u16; BLOCK] = first_block(&wr[kb * BLOCK..]);
        let mut a = _mm512_setzero_ps();
        for (xc, wc) in x.chunks_exact(STEP).zip(wb.chunks_exact(STEP)) {
            let wv: [u16; STEP] = wc.try_into().expect("32 terms");
            a = _mm512_dpbf16_ps(a, load(xc), pair_order(bytemuck::cast(wv)));
        }
        a
    };
    for (i, d) in out.iter_mut().enumerate() {
        let j = j0 + i;
        let wr = &w[j * k..(j + 1) * k];
        let mut total = 0.0f32;
        let mut kb = 0;
        while kb + 2 <= full {
            let (a0, a1) = (block(wr, kb), block(wr, kb + 1));
            total = fold.fold(0, j, kb, total, tree(&bytemuck::cast::<__m512, Lanes>(a0)));
            total = fold.fold(
                0,
                j,
                kb + 1,
                total,
                tree(&bytemuck::cast::<__m512, Lanes>(a1)),
            );
            kb += 2;
        }
        for kb in kb..k.div_ceil(BLOCK) {
            total = fold.fold(0, j, kb, total, block_sum(xp, wr, kb * BLOCK));
        }
        *d = O::store(total);
    }
}

/// [`rows`] for e4m3 weights on a CPU that also has AVX-512 VBMI: the same additions, the
/// codes decoded 64 at a time straight into pair order (`e4m3_pairs`).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512bf16")]
pub(crate) fn rows_e4m3_vbmi<O: OutElem, F: Fold>(
    xp: &[u16],
    k: usize,
    w: &[u8],
    j0: usize,
    out: &mut [O],
    fold: &F,
) {
    let (full, blocks) = (k / BLOCK, k.div_ceil(BLOCK));
    let block = |wr: &[u8], kb: usize| {
        if kb < full {
            let x: &[u16; BLOCK] = first_block(&xp[kb * BLOCK..]);
            let wb: &[u8; BLOCK] = first_block(&wr[kb * BLOCK..]);
            let mut a = _mm512_setzero_ps();
            for (xc, wc) in x.chunks_exact(CODES).zip(wb.chunks_exact(CODES)) {
                let [p0, p1] = pairs64(wc.try_into().expect("64 codes"));
                a = _mm512_dpbf16_ps(a, load(xc), p0);
                a = _mm512_dpbf16_ps(a, load(&xc[STEP..]), p1);
            }
            a
        } else {
            // The last block's codes padded with +0 to 64 (read from the row's last 64 where the
            // row has them); its second 32 terms exist in packed x only where it reaches past
            // its first 32.
            let mut a = _mm512_setzero_ps();
            for c in (kb * BLOCK..k).step_by(CODES) {
                let [p0, p1] = if let Some(whole) = wr[c..].first_chunk::<CODES>() {
                    pairs64(whole)
                } else if let Some(last) = wr.last_chunk::<CODES>() {
                    pairs_last(last, k - c)
                } else {
                    let mut codes = [0u8; CODES];
                    codes[..k - c].copy_from_slice(&wr[c..]);
                    pairs64(&codes)
                };
                a = _mm512_dpbf16_ps(a, load(&xp[c..]), p0);
                if c + STEP < k {
                    a = _mm512_dpbf16_ps(a, load(&xp[c + STEP..]), p1);
                }
            }
            a
        }
    };
    let mut sums = [0.0f32; GROUP];
    for (i, d) in out.iter_mut().enumerate() {
        let j = j0 + i;
        let wr = &w[j * k..(j + 1) * k];
        let mut total = 0.0f32;
        for g in (0..blocks).step_by(GROUP) {
            let count = (blocks - g).min(GROUP);
            for (q, s) in sums.iter_mut().take(count).enumerate() {
                *s = tree(&bytemuck::cast::<__m512, Lanes>(block(wr, g + q)));
            }
            total = fold.fold_run(0, j, g, total, &sums[..count]);
        }
        *d = O::store(total);
    }
}

/// The first whole block of `s` (the caller's slice starts at a block that is whole).
#[inline(always)]
fn first_block<E>(s: &[E]) -> &[E; BLOCK] {
    s.first_chunk::<BLOCK>().expect("a whole block")
}
