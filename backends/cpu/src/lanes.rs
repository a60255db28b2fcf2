//! The canonical within-block sum (docs/numerics.md §4) as one 16-lane array per dot, for the
//! GEMV kernels that are compiled once per instruction set (see `gemv`).
//!
//! The 16 lanes are one `[f32; 16]`: lane j adds the rounded products of terms j, j+16, … of
//! the block in order from +0.0 (a separate multiply and add: Rust never contracts them to
//! an FMA), then `lane[j] += lane[j+s]` for s = 8, 4, 2, 1. Written on plain arrays so that
//! LLVM maps a whole accumulator to one AVX-512 register (two AVX2, four SSE/NEON) in each
//! instruction-set clone; the additions are the same whatever the register width.
use concord_core::numerics::reduce::REDUCE_LANES;

use crate::elem::Elem;

const LANES: usize = REDUCE_LANES;
const _: () = assert!(LANES == 16);

/// The 16 lane accumulators of one dot.
type Lanes = [f32; LANES];

/// The fixed lane tree `lane[j] += lane[j+s]` for s = 8, 4, 2, 1; returns lane 0.
#[inline(always)]
fn tree(v: &Lanes) -> f32 {
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

/// The 16 values of `s` (exactly 16) widened to f32.
#[inline(always)]
fn widen<E: Elem>(s: &[E]) -> Lanes {
    let s: &[E; LANES] = s.try_into().expect("16 terms");
    let mut v = [0.0f32; LANES];
    for l in 0..LANES {
        v[l] = s[l].f();
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

/// Within-block sums of `x · w[r]` for R weight rows at once (each ≤ 128 terms, all of
/// `x.len()`): `canonical_block_sum` of each row's products. x is loaded and widened once
/// per 16 terms for all R rows; the accumulators are values, so they stay in registers.
#[inline(always)]
pub(crate) fn block_dots<X: Elem, W: Elem, const R: usize>(x: &[X], w: [&[W]; R]) -> [f32; R] {
    let len = x.len();
    let full = len - len % LANES;
    let mut acc = [[0.0f32; LANES]; R];
    for c in (0..full).step_by(LANES) {
        let xv = widen(&x[c..c + LANES]);
        for r in 0..R {
            acc[r] = mul_add(acc[r], xv, widen(&w[r][c..c + LANES]));
        }
    }
    if full < len {
        let mut xt = [0.0f32; LANES];
        for (d, v) in xt.iter_mut().zip(&x[full..]) {
            *d = v.f();
        }
        for r in 0..R {
            let mut wt = [0.0f32; LANES];
            for (d, v) in wt.iter_mut().zip(&w[r][full..len]) {
                *d = v.f();
            }
            // Lanes past the tail add 0·0 = +0.0 to a lane that is +0.0 or a sum: no change
            // unless the lane holds -0.0, which a sum started from +0.0 never does.
            acc[r] = mul_add(acc[r], xt, wt);
        }
    }
    let mut out = [0.0f32; R];
    for r in 0..R {
        out[r] = tree(&acc[r]);
    }
    out
}
