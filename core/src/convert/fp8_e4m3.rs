//! float8 e4m3fn (spec §6.1, §6.7): `S EEEE MMM`, bias 7, no infinities, NaN only at
//! `S.1111.111` (0x7F, 0xFF), largest finite 448.

use super::f16::rne_magnitude;

/// Largest finite e4m3fn value.
pub const E4M3_MAX: f32 = 448.0;

/// f32 bits of 448, the largest finite e4m3fn value.
const MAX_BITS: u32 = 0x43E0_0000;
/// f32 bits of 464 = 448 + half an ulp: the NOSAT overflow point (464 itself rounds to 448).
const NOSAT_LIMIT_BITS: u32 = 0x43E8_0000;

/// e4m3fn byte → f32 (exact). 0x7F and 0xFF are NaN (with the byte's sign).
#[inline]
pub fn e4m3_to_f32(b: u8) -> f32 {
    let b = b as u32;
    let sign = (b & 0x80) << 24;
    let em = b & 0x7F;
    // Normal: rebias the exponent from 7 to 127.
    let mut bits = (em << 20) + ((127 - 7) << 23);
    // Subnormal: em · 2^-9, exact, computed from the integer (no subnormal f32 operands).
    if em < 0x08 {
        bits = (em as f32 * (1.0 / 512.0)).to_bits();
    }
    if em == 0x7F {
        bits = 0x7FC0_0000;
    }
    f32::from_bits(sign | bits)
}

/// f32 → e4m3fn with PTX `cvt.rn.satfinite` semantics: round to nearest even (subnormals
/// included); |x| ≥ 448, ±∞ included, gives sign | 0x7E (464, a tie, rounds to 448 anyway).
///
/// Every NaN, whatever its sign, gives the positive NaN 0x7F (the CUDA header's software path
/// canonicalizes NaN to positive; the hardware's sign for a negative NaN is unverified).
#[inline]
pub fn f32_to_e4m3_satfinite(x: f32) -> u8 {
    let u = x.to_bits();
    let sign = (u >> 24) & 0x80;
    let a = u & 0x7FFF_FFFF;
    let byte = if a > 0x7F80_0000 {
        0x7F
    } else {
        sign | rne_magnitude::<7, 3>(a.min(MAX_BITS))
    };
    byte as u8
}

/// f32 → e4m3fn without saturation (PyTorch c10 `tensor.to(torch.float8_e4m3fn)`): round to
/// nearest even; anything that rounds above 448 (|x| > 464) and ±∞ give NaN `0x7F | sign`.
///
/// A NaN input gives `0x7F | sign`, so a negative NaN gives 0xFF (as in PyTorch).
#[inline]
pub fn f32_to_e4m3_nosat(x: f32) -> u8 {
    let u = x.to_bits();
    let sign = (u >> 24) & 0x80;
    let a = u & 0x7FFF_FFFF;
    // NaN bits also compare above 464's bits.
    let mag = if a > NOSAT_LIMIT_BITS {
        0x7F
    } else {
        rne_magnitude::<7, 3>(a)
    };
    (sign | mag) as u8
}
