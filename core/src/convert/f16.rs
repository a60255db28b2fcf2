//! IEEE 754 binary16 (F16) conversions, plus the shared round-to-nearest-even kernel used by
//! the f16 and fp8 narrowing conversions in this module.

/// Rounds a non-negative, non-NaN f32 magnitude onto a binary floating-point format with `M`
/// stored mantissa bits and exponent bias `B` (gradual underflow included), round to nearest,
/// ties to even.
///
/// Branch-free: both paths are computed and selected. The normal range uses integer arithmetic
/// only; the subnormal range uses one f32 addition of a power of two (exact except for the one
/// RNE rounding wanted) rather than a per-value variable shift, because the latter does not
/// vectorise on baseline x86-64 (SSE2) and made the hot loops 2–8× slower.
///
/// `a` is the f32 bit pattern with the sign bit cleared. The result is the target's magnitude
/// bits, `(biased exponent << M) | mantissa`; a carry out of the mantissa correctly lands in the
/// exponent field. The caller clamps `a` so that the result stays within the exponent field
/// (at most one binade above the largest finite value, where the result is the ∞/NaN code).
#[inline(always)]
pub(super) fn rne_magnitude<const B: u32, const M: u32>(a: u32) -> u32 {
    // Bits dropped from the f32 mantissa, and the f32 bits of the smallest normal 2^(1-B).
    let shift = 23 - M;
    let min_normal = (127 + 1 - B) << 23;

    // Normal range: rebias the exponent in place, then round the low `shift` bits away.
    let r = a.wrapping_sub((127 - B) << 23);
    let normal = r
        .wrapping_add((1 << (shift - 1)) - 1)
        .wrapping_add((r >> shift) & 1)
        >> shift;

    // Subnormal range: adding 2^(23+1-B-M) puts the target's subnormal quantum 2^(1-B-M) at
    // the f32 ulp, so the (correctly rounded, ties-to-even) f32 addition performs exactly the
    // rounding wanted; the sum's low mantissa bits are the result (at most 2^M, which is
    // correctly the smallest normal). The sum is always a normal f32 and a subnormal input
    // correctly gives 0 even if the FPU flushes it, so the result does not depend on FTZ/DAZ.
    let magic = (151 - B - M) << 23;
    let sub = (f32::from_bits(a) + f32::from_bits(magic))
        .to_bits()
        .wrapping_sub(magic);

    if a < min_normal {
        sub
    } else {
        normal
    }
}

/// f32 → IEEE binary16 bits: round to nearest even (subnormals included), finite values that
/// round past 65504 (|x| ≥ 65520) and ±∞ become ±∞ (0x7C00 | sign).
///
/// NaN becomes the canonical quiet NaN with the input's sign, `0x7E00 | sign` (the payload is
/// not kept).
#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    let u = x.to_bits();
    let sign = (u >> 16) & 0x8000;
    let a = u & 0x7FFF_FFFF;
    // Clamping to 2^16 (0x4780_0000) maps everything above the overflow point, ∞ included, to
    // the ∞ code 0x7C00.
    let mag = if a > 0x7F80_0000 {
        0x7E00
    } else {
        rne_magnitude::<15, 10>(a.min(0x4780_0000))
    };
    (sign | mag) as u16
}

/// IEEE binary16 bits → f32 (exact). ±∞ maps to ±∞; a NaN keeps its sign and its payload
/// (shifted into the top of the f32 mantissa), so 0x7E00 → 0x7FC0_0000.
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7FFF;
    // Normal: rebias the exponent from 15 to 127. ∞/NaN: rebias once more so that the f16
    // exponent 31 lands on the f32 exponent 255.
    let mut bits = (em << 13) + ((127 - 15) << 23);
    if em >= 0x7C00 {
        bits += (255 - 31 - (127 - 15)) << 23;
    }
    // Subnormal: em · 2^-24, exact (em < 2^10) and computed from an integer, so no subnormal
    // f32 operand is ever involved.
    if em < 0x0400 {
        bits = (em as f32 * (1.0 / 16_777_216.0)).to_bits();
    }
    f32::from_bits(sign | bits)
}
