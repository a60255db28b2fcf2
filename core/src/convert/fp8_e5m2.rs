//! float8 e5m2: `S EEEEE MM`, bias 15, IEEE-like (0x7C = ∞, 0x7D..0x7F = NaN), largest finite
//! 57344 (0x7B). It is exactly the top byte of an IEEE binary16.

use super::f16::rne_magnitude;

/// Largest finite e5m2 value.
pub const E5M2_MAX: f32 = 57344.0;

/// f32 bits of 57344, the largest finite e5m2 value.
const MAX_BITS: u32 = 0x4760_0000;
/// f32 bits of 65536 = 2^16: clamping here makes the rounding produce the ∞ code 0x7C.
const INF_CLAMP_BITS: u32 = 0x4780_0000;

/// e5m2 byte → f32 (exact): the top byte of an f16. ±∞ maps to ±∞, NaN to NaN.
#[inline]
pub fn e5m2_to_f32(b: u8) -> f32 {
    super::f16_to_f32((b as u16) << 8)
}

/// f32 → e5m2 with PTX `cvt.rn.satfinite` semantics: round to nearest even (subnormals
/// included); anything at or above 57344 in magnitude, ±∞ included, gives sign | 0x7B.
///
/// Every NaN, whatever its sign, gives the positive NaN 0x7F (as for e4m3 satfinite).
#[inline]
pub fn f32_to_e5m2_satfinite(x: f32) -> u8 {
    let u = x.to_bits();
    let sign = (u >> 24) & 0x80;
    let a = u & 0x7FFF_FFFF;
    let byte = if a > 0x7F80_0000 {
        0x7F
    } else {
        sign | rne_magnitude::<15, 2>(a.min(MAX_BITS))
    };
    byte as u8
}

/// f32 → e5m2, round to nearest even without saturation (IEEE / PyTorch c10): magnitudes that
/// round past 57344 (|x| ≥ 61440, the tie going to the even code 0x7C) and ±∞ give
/// ±∞ `0x7C | sign`.
///
/// A NaN input gives `0x7F | sign` (PyTorch's choice), so a negative NaN gives 0xFF.
#[inline]
pub fn f32_to_e5m2_nosat(x: f32) -> u8 {
    let u = x.to_bits();
    let sign = (u >> 24) & 0x80;
    let a = u & 0x7FFF_FFFF;
    let mag = if a > 0x7F80_0000 {
        0x7F
    } else {
        rne_magnitude::<15, 2>(a.min(INF_CLAMP_BITS))
    };
    (sign | mag) as u8
}
