//! bfloat16 conversions (spec §6.8).

/// f32 → bfloat16 bits, round to nearest even on the top 16 bits (subnormals included; values
/// that round past the largest finite bf16 become ±∞). NaN becomes the quiet NaN 0x7FC0
/// whatever its sign and payload (PyTorch's choice, spec §6.8).
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7FFF_FFFF > 0x7F80_0000 {
        return 0x7FC0;
    }
    // No overflow for non-NaN inputs: the largest is 0xFF80_0000 + 0x7FFF.
    ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) as u16
}

/// bfloat16 bits → f32 (exact).
#[inline]
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// Rounds an f32 to the nearest bfloat16 value (ties to even) and returns it as f32.
#[inline]
pub fn round_to_bf16(x: f32) -> f32 {
    bf16_to_f32(f32_to_bf16(x))
}
