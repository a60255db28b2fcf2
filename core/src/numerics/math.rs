//! exp, sigmoid, SiLU, softmax and the RMSNorm reciprocal square root exactly as
//! docs/numerics.md §5 defines them.
//!
//! Every function is built only from correctly rounded f32 `+ − × ÷ sqrt`, `floor`,
//! comparisons and exact bit manipulation of powers of two, each operation rounded on its own
//! (Rust never contracts `a * b + c` into a fused multiply-add). A device kernel that performs
//! the same operations in the same order gets the same bits.

use super::reduce;

/// log2(e) = 1.44269504088896341 rounded to f32 (0x3FB8AA3B).
pub const LOG2E: f32 = std::f32::consts::LOG2_E;
/// High part of ln 2 for the Cody–Waite reduction: 0.693359375 = 355/512 (9 significant bits,
/// so `n · EXP_C1` is exact for |n| ≤ 2^15).
#[allow(clippy::excessive_precision)] // exactly representable
pub const EXP_C1: f32 = 0.693_359_375;
/// Low part of ln 2: ln 2 − EXP_C1 rounded to f32 (−2.12194440e-4, 0xB95E8083).
#[allow(clippy::excessive_precision)] // Cephes' literal, kept verbatim.
pub const EXP_C2: f32 = -2.121_944_4e-4;
/// Above this exp returns +∞ (0x42B17218; ln(f32::MAX) = 88.7228390520… lies just below it,
/// and exp of this value itself rounds to +∞ through the normal path).
#[allow(clippy::excessive_precision)] // exactly representable
pub const EXP_OVERFLOW_X: f32 = 88.722_839_355_468_75;
/// Below this exp returns +0.0 (0xC2CFF1B5 = −103.97208404541015625; ln 2^−150 =
/// −103.9720770839…, so exp(x) < 2^−150 there and rounds to zero).
#[allow(clippy::excessive_precision)] // exactly representable
pub const EXP_UNDERFLOW_X: f32 = -103.972_084_045_410_156_25;

/// Cephes `expf` minimax coefficients, highest degree first (the last rounds to exactly 0.5).
#[allow(clippy::excessive_precision)] // Cephes' literals, kept verbatim.
pub const EXP_POLY: [f32; 6] = [
    1.987_569_150_0e-4,
    1.398_199_950_7e-3,
    8.333_451_907_3e-3,
    4.166_579_589_4e-2,
    1.666_666_545_9e-1,
    5.000_000_120_1e-1,
];

/// 2^e for a normal exponent −126 ≤ e ≤ 127, built from its bit pattern (exact).
#[inline(always)]
fn pow2(e: i32) -> f32 {
    debug_assert!((-126..=127).contains(&e));
    f32::from_bits(((e + 127) as u32) << 23)
}

/// e^x in f32 (docs/numerics.md §5.1): Cody–Waite reduction by n·ln 2, the Cephes degree-5
/// polynomial, scaling by 2^n with one final rounding (subnormal results included).
///
/// NaN → NaN; x > [`EXP_OVERFLOW_X`] (and +∞) → +∞; x < [`EXP_UNDERFLOW_X`] (and −∞) → +0.0.
#[inline]
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > EXP_OVERFLOW_X {
        return f32::INFINITY;
    }
    if x < EXP_UNDERFLOW_X {
        return 0.0;
    }
    // n ∈ [−150, 128] on the remaining domain.
    let n = (x * LOG2E + 0.5).floor();
    let r = (x - n * EXP_C1) - n * EXP_C2;
    let p = ((((EXP_POLY[0] * r + EXP_POLY[1]) * r + EXP_POLY[2]) * r + EXP_POLY[3]) * r
        + EXP_POLY[4])
        * r
        + EXP_POLY[5];
    let y = p * (r * r) + r + 1.0;
    // y ∈ [0.70, 1.42], so every scaling step but the last is exact.
    let n = n as i32;
    if n > 127 {
        // n = 128: y·2^127 is exact and finite; ·2 rounds (overflows to +∞ or not) once.
        y * pow2(127) * pow2(n - 127)
    } else if n < -126 {
        // y·2^(n+126) is a normal number (n + 126 ≥ −24), exact; ·2^−126 is the one rounding
        // into the subnormal range.
        y * pow2(n + 126) * pow2(-126)
    } else {
        y * pow2(n)
    }
}

/// Logistic function `1 / (1 + exp(−x))` (docs/numerics.md §5.2).
///
/// +∞ → 1, −∞ → +0.0, x ≥ 17 → exactly 1.0, x < −88.72283935546875 → +0.0 (exp(−x) = +∞).
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// SiLU `x / (1 + exp(−x))` (docs/numerics.md §5.2), one division, not `x · sigmoid(x)`.
///
/// x < −88.72283935546875 → −0.0; −∞ → NaN (−∞/+∞), as in PyTorch's kernel; +∞ → +∞.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// Softmax of a row in place (docs/numerics.md §5.3): `m = max(x)` ([`reduce::max`]);
/// all −∞ → every output +0.0; else `e_i = exp(x_i − m)`, `s = sum(e)` ([`reduce::sum`]),
/// `p_i = e_i / s`. Any NaN (or +∞) input makes every output NaN.
pub fn softmax_in_place(x: &mut [f32]) {
    let m = reduce::max(x);
    if m == f32::NEG_INFINITY {
        x.fill(0.0);
        return;
    }
    for v in x.iter_mut() {
        *v = exp(*v - m);
    }
    let s = reduce::sum(x);
    for v in x.iter_mut() {
        *v /= s;
    }
}

/// RMSNorm's reciprocal root `1 / sqrt(mean_sq + eps)`: one add, one correctly rounded
/// square root, one division (docs/numerics.md §6 RMSNorm).
#[inline]
pub fn rsqrt_for_norm(mean_sq: f32, eps: f32) -> f32 {
    1.0 / (mean_sq + eps).sqrt()
}
