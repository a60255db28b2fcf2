//! `y = x · wᵀ` cores shared by matmul, block_fp8_matmul and moe_experts.
//!
//! Every output element is computed with the same additions in the same order (a canonical
//! dot, or the block-scaled FP8 sum), so how the work is split across threads or micro-kernels
//! never changes a bit. Where the CPU has AVX512-BF16 and the operands qualify (e4m3 without
//! NaN codes; BF16 weights and bf16-valued x of safe magnitude) every shape goes to the
//! pair-dot tier (`blocked_pairdot`), which performs the same additions. Otherwise several
//! rows of x (prefill) go to the register-blocked kernels of `blocked`; one row of x with
//! FP8 weights (decode) goes to `gemv::gemv_fp8`, with BF16/F32 weights to the canonical dot.
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::blocked::{gemm_blocked, Fold, PlainSum, Weight, MR, NR};
use crate::canonical::dot;
use crate::elem::{Elem, OutElem};
use crate::gemv::gemv_fp8;

/// Weight rows per parallel task of the one-row path.
const TILE: usize = 16;

/// `out[m·n + j] = O::store(dot(x[m·k..], w[j·k..]))` for x [M, k], w [n, k], out [M, n].
/// `pair_safe`: every value of w is safe for the pair-dot tier (the storage's cached check,
/// `In::pair_safe`); several rows of x then take it where the CPU and x allow.
pub(crate) fn gemm<W: Weight, O: OutElem>(
    x: &[f32],
    k: usize,
    w: &[W],
    n: usize,
    out: &mut [O],
    pair_safe: bool,
) {
    let m = out.len().checked_div(n).unwrap_or(0);
    debug_assert!(x.len() == m * k && w.len() == n * k);
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(wb) = W::as_bf16(w).filter(|_| pair_safe) {
        if crate::blocked_pairdot::gemm_bf16(x, k, wb, n, out, &PlainSum) {
            return;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = pair_safe;
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
    gemm_blocked(x, k, w, n, out, &PlainSum);
}

/// The 256 e4m3fn codes decoded by `concord_core::convert::e4m3_to_f32`: a lookup is the
/// fastest scalar decode for the activations, decoded once per op (weights are decoded in
/// registers by the kernels).
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
    /// No code is NaN (the storage's cached check, `In::pair_safe`): several rows of x may
    /// take the pair-dot tier.
    pub pair_safe: bool,
}

/// The block-scaled FP8 GEMM of spec §6.6 in the contract's order:
/// `y[m,j] = A(Σ_kb (blocksum_kb(xq[m]·w[j]) · xs[m,kb]) · ws[j/bn, kb])`, each block sum in
/// the canonical within-block order, the outer sum in kb order from +0.0.
///
/// `xq` holds the activations' e4m3 codes [M, k], `xs` [M, ⌈k/128⌉] their scales; out
/// [M, n]. One row (decode) goes to `gemv_fp8`; several rows decode the activations once
/// and go to the register-blocked kernels, which decode each weight code in registers.
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
    let fold = Fp8Fold {
        xs,
        ws: w.scales,
        kb,
        block_rows: w.block_rows,
    };
    #[cfg(target_arch = "x86_64")]
    if w.pair_safe && crate::blocked_pairdot::gemm_e4m3(xq, k, w.codes, n, out, &fold) {
        return;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = w.pair_safe;
    if m == 1 {
        gemv_fp8(xq, xs, k, w, out);
        return;
    }
    let x = decode_e4m3(xq);
    gemm_blocked(&x, k, w.codes, n, out, &fold);
}

/// Spec §6.6's outer sum: block kb's sum times the activation scale, then the weight scale.
pub(crate) struct Fp8Fold<'a> {
    /// Activation scales [M, kb].
    pub xs: &'a [f32],
    /// Weight scales [⌈n/block_rows⌉, kb].
    pub ws: &'a [f32],
    /// Blocks of 128 per row.
    pub kb: usize,
    /// Weight rows per scale block.
    pub block_rows: usize,
}

impl Fold for Fp8Fold<'_> {
    #[inline(always)]
    fn fold(&self, m: usize, j: usize, kb: usize, total: f32, sum: f32) -> f32 {
        total + (sum * self.xs[m * self.kb + kb]) * self.ws[(j / self.block_rows) * self.kb + kb]
    }

    /// As `fold` per block, the row's scales sliced once (the division out of the loop).
    #[inline(always)]
    fn fold_run(&self, m: usize, j: usize, kb0: usize, total: f32, sums: &[f32]) -> f32 {
        let xs = &self.xs[m * self.kb + kb0..][..sums.len()];
        let ws = &self.ws[(j / self.block_rows) * self.kb + kb0..][..sums.len()];
        sums.iter()
            .zip(xs.iter().zip(ws))
            .fold(total, |t, (s, (x, w))| t + (s * x) * w)
    }

    /// The same operations as [`fold`](Fold::fold) per output, the 4 + 4 scales read once.
    #[inline(always)]
    fn fold_tile(
        &self,
        m: [usize; MR],
        j: [usize; NR],
        kb: usize,
        total: &mut [f32; MR * NR],
        sums: &[f32; MR * NR],
    ) {
        // Loops, not `map`: a closure would not inherit the calling kernel's features.
        let mut xs = [0.0f32; MR];
        for (s, m) in xs.iter_mut().zip(m) {
            *s = self.xs[m * self.kb + kb];
        }
        let mut ws = [0.0f32; NR];
        for (s, j) in ws.iter_mut().zip(j) {
            *s = self.ws[(j / self.block_rows) * self.kb + kb];
        }
        for (i, (t, s)) in total.iter_mut().zip(sums).enumerate() {
            *t += (*s * xs[i / NR]) * ws[i % NR];
        }
    }
}
