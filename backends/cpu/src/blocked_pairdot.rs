//! Prefill's `y = x · wᵀ` on the pair-dot tier (`pairdot`), where the CPU has AVX512-BF16
//! and the operands qualify: rows of x are checked and packed into pair order once per op,
//! then split over threads as `blocked` splits its tiles, except that tasks take rows of x
//! only when each gets `PANEL_ROWS` of them (each task packs the weight panels it meets);
//! one row of x: as `gemv` splits its rows, on `gemv_pairdot`'s kernel; a few rows
//! (`pairdot_few::takes`): split as the tiles, on `pairdot_few`'s kernel (no packed panels).
//! Each entry returns false (and computes nothing) where the tier does not apply; the caller
//! then runs `blocked`.
use crate::blocked::{split_tiles, Fold};
use crate::elem::OutElem;
use crate::gemv::split_rows;
use crate::pairdot::{e4m3_code_is_safe, f32_term_is_safe, pack_row, packed_len, PairWeight};
use crate::pairdot_few;
use crate::pairdot_sys::{PairDot, TileKernel};

/// Rows of x a task must have before tasks split the rows rather than the weights: each task
/// packs every weight panel it meets, so with few rows per task (M = 32 over 8 tasks: 4)
/// the packing costs about as much as the products; split by weight rows instead, every
/// panel is packed once per op and meets every row of x. 32 (8 row groups per packing)
/// measured 1.2-1.35x faster than 16 at M = 128 on two threads.
const PANEL_ROWS: usize = 8 * crate::blocked::MR;

/// x [m, k] packed row by row into pair order with `bf16` (each row `packed_len(k)` long).
fn pack_rows<E: Copy>(x: &[E], k: usize, bf16: impl Fn(E) -> u16) -> Vec<u16> {
    let kp = packed_len(k);
    let mut xp = vec![0u16; x.len() / k * kp];
    for (src, dst) in x.chunks_exact(k).zip(xp.chunks_exact_mut(kp)) {
        pack_row(src, dst, &bf16);
    }
    xp
}

/// All of `out` [m, n] from packed x on the tier: one row of x as a GEMV, a few rows
/// against weights permuted in registers, more against packed weight panels.
fn run<W: PairWeight, O: OutElem, F: Fold>(
    dot: PairDot,
    xp: &[u16],
    k: usize,
    w: &[W],
    n: usize,
    out: &mut [O],
    fold: &F,
) {
    if out.len() == n {
        split_rows(out, k, |j0, o| dot.gemv_rows(xp, k, w, j0, o, fold));
        return;
    }
    let kernel = if pairdot_few::takes(out.len() / n, std::mem::size_of_val(w)) {
        TileKernel::FewRows
    } else {
        TileKernel::PackedPanels
    };
    split_tiles(k, n, out, PANEL_ROWS, |rows, cols, o, ldo| {
        dot.tile(kernel, xp, k, w, rows, cols, fold, o, ldo)
    });
}

/// `gemm_blocked` for f32 x [m, k] and BF16 weights [n, k] whose every value the caller has
/// found safe (`pairdot::bf16_term_is_safe`): runs when every x is a safe bf16 value.
pub(crate) fn gemm_bf16<O: OutElem, F: Fold>(
    x: &[f32],
    k: usize,
    w: &[u16],
    n: usize,
    out: &mut [O],
    fold: &F,
) -> bool {
    let Some(dot) = PairDot::detect() else {
        return false;
    };
    if k == 0 || !x.iter().all(|v| f32_term_is_safe(*v)) {
        return false;
    }
    let xp = pack_rows(x, k, |v: f32| (v.to_bits() >> 16) as u16);
    run(dot, &xp, k, w, n, out, fold);
    true
}

/// `gemm_blocked` for e4m3 activation codes xq [m, k] and e4m3 weights [n, k] without NaN
/// codes (the caller's check): runs when xq has no NaN code either.
pub(crate) fn gemm_e4m3<O: OutElem, F: Fold>(
    xq: &[u8],
    k: usize,
    w: &[u8],
    n: usize,
    out: &mut [O],
    fold: &F,
) -> bool {
    let Some(dot) = PairDot::detect() else {
        return false;
    };
    if k == 0 || !xq.iter().all(|c| e4m3_code_is_safe(*c)) {
        return false;
    }
    let xp = dot.pack_e4m3_rows(xq, k);
    run(dot, &xp, k, w, n, out, fold);
    true
}
