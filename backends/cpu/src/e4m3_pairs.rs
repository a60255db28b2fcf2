//! 64 e4m3fn codes straight into two pair-ordered bf16 registers with AVX-512 VBMI: the
//! decode GEMV's weight side in 7 instructions per 64 codes (one byte permute into place,
//! two 128-entry byte lookups for the bf16 value's high and low bytes, the sign merged in,
//! two byte interleaves), where the portable path (`pairdot::e4m3x32` then `pair_order`)
//! spends about 20 and made fp8 decode compute-bound at half the memory's speed.
//!
//! The result is exactly `pair_order(natural32(codes[0..32]))` and
//! `pair_order(natural32(codes[32..64]))`: the bytes are permuted *before* the lookups so
//! that the interleaves, which pair byte i of each 128-bit lane of the low-byte vector with
//! byte i of the high-byte vector, land every term in its pair-order slot.
use std::arch::x86_64::{
    __m512bh, __m512i, _mm512_add_epi8, _mm512_cmplt_epu8_mask, _mm512_maskz_permutexvar_epi8,
    _mm512_permutex2var_epi8, _mm512_permutexvar_epi8, _mm512_set1_epi8, _mm512_ternarylogic_epi32,
    _mm512_unpackhi_epi8, _mm512_unpacklo_epi8,
};

use concord_core::numerics::reduce::REDUCE_BLOCK as BLOCK;

use crate::blocked::LANES;
use crate::pairdot::STEP;

/// Codes per call: two pair-order steps.
pub(crate) const CODES: usize = 2 * STEP;

/// The bf16 bits of the magnitude of e4m3 code `em` (0 … 127, sign cleared): subnormals
/// `em · 2⁻⁹` (em < 8), normals with the exponent rebiased from 7 to 127. Code 0x7F (NaN)
/// would read as 480; it is never looked up, the callers refuse NaN codes.
const fn magnitude_bf16(em: u16) -> u16 {
    if em == 0 {
        0
    } else if em < 8 {
        // em · 2⁻⁹ = 2^(e-9) · (em / 2^e) with e = ⌊log₂ em⌋: exponent field 118 + e,
        // mantissa the bits of em below its leading one, moved to the top of bf16's 7.
        let e = 15 - em.leading_zeros() as u16;
        ((118 + e) << 7) | ((em << (7 - e)) & 0x7F)
    } else {
        (em << 4) + ((127 - 7) << 7)
    }
}

/// One byte of every magnitude's bf16 bits (`HIGH`: bits 8–15, else 0–7), as the two
/// 64-byte tables `vpermi2b` indexes with a code's low 7 bits.
const fn byte_table<const HIGH: bool>() -> [u8; 128] {
    let mut t = [0u8; 128];
    let mut em = 0;
    while em < 128 {
        let b = magnitude_bf16(em as u16);
        t[em] = if HIGH { (b >> 8) as u8 } else { b as u8 };
        em += 1;
    }
    t
}

/// The `vpermb` indices that put code `term` of 64 where the interleaves expect it: byte
/// 16q + i (i < 8) becomes word 8q + i of the first register, byte 16q + 8 + i word 8q + i
/// of the second; word 2l + 1 of a register holds term l of its 32 and word 2l term l + 16.
const fn placement() -> [u8; CODES] {
    let mut t = [0u8; CODES];
    let mut pos = 0;
    while pos < CODES {
        let (q, r) = (pos / 16, pos % 16);
        let (base, word) = if r < 8 {
            (0, 8 * q + r)
        } else {
            (STEP, 8 * q + r - 8)
        };
        let term = if word % 2 == 1 {
            word / 2
        } else {
            word / 2 + LANES
        };
        t[pos] = (base + term) as u8;
        pos += 1;
    }
    t
}

const LOW: [u8; 128] = byte_table::<false>();
const HIGH: [u8; 128] = byte_table::<true>();
const PLACEMENT: [u8; CODES] = placement();

/// Codes `s[0..64]` as bf16 bits in pair order: `[pair_order(terms 0..32),
/// pair_order(terms 32..64)]`. No NaN codes (0x7F, 0xFF) allowed.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512bf16")]
pub(crate) fn pairs64(s: &[u8; CODES]) -> [__m512bh; 2] {
    let codes: __m512i = bytemuck::cast(*s);
    lookup(_mm512_permutexvar_epi8(bytemuck::cast(PLACEMENT), codes))
}

/// As [`pairs64`] for the last `count` (< 64) codes of `s`, which ends where the weight row
/// does: terms `count..64` are +0. The placement permute reads them from the row's last 64
/// bytes and zeroes the rest, so a row's tail costs no copy into a padded buffer (whose
/// narrow stores, read back as one 64-byte load, stalled on store forwarding).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512bf16")]
pub(crate) fn pairs_last(s: &[u8; CODES], count: usize) -> [__m512bh; 2] {
    let codes: __m512i = bytemuck::cast(*s);
    let place: __m512i = bytemuck::cast(PLACEMENT);
    let skip = _mm512_set1_epi8((CODES - count) as i8);
    let present = _mm512_cmplt_epu8_mask(place, _mm512_set1_epi8(count as i8));
    lookup(_mm512_maskz_permutexvar_epi8(
        present,
        _mm512_add_epi8(place, skip),
        codes,
    ))
}

/// Placed codes → the two pair-ordered bf16 registers.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512bf16")]
fn lookup(placed: __m512i) -> [__m512bh; 2] {
    let table = |t: &[u8; 128]| -> (__m512i, __m512i) {
        let (a, b) = t.split_at(64);
        (
            bytemuck::cast(<[u8; 64]>::try_from(a).expect("64 bytes")),
            bytemuck::cast(<[u8; 64]>::try_from(b).expect("64 bytes")),
        )
    };
    // vpermi2b reads each index byte's low 7 bits: the sign bit selects nothing.
    let (lo0, lo1) = table(&LOW);
    let (hi0, hi1) = table(&HIGH);
    let low = _mm512_permutex2var_epi8(lo0, placed, lo1);
    let high_magnitude = _mm512_permutex2var_epi8(hi0, placed, hi1);
    // high | (placed & 0x80): the code's sign becomes bf16's (0xF8 = A | (B & C)).
    let high = _mm512_ternarylogic_epi32::<0xF8>(high_magnitude, placed, _mm512_set1_epi8(-128));
    [
        bytemuck::cast(_mm512_unpacklo_epi8(low, high)),
        bytemuck::cast(_mm512_unpackhi_epi8(low, high)),
    ]
}

/// `pairdot::pack_row(src, dst, e4m3_to_bf16)` for one row of e4m3 activation codes: each
/// 128-term block's steps in pair order, 64 codes per [`pairs64`], a block's last step padded
/// with +0 (`dst` is `packed_len(src.len())` long). No NaN codes.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512bf16")]
pub(crate) fn pack_row(src: &[u8], dst: &mut [u16]) {
    for (block, out) in src.chunks(BLOCK).zip(dst.chunks_mut(BLOCK)) {
        for (c, codes) in block.chunks(CODES).enumerate() {
            let mut padded = [0u8; CODES];
            padded[..codes.len()].copy_from_slice(codes);
            let [p0, p1] = pairs64(&padded);
            // Steps of this chunk that exist in the packed row (a block's last may be one).
            let steps = codes.len().div_ceil(STEP);
            for (s, p) in [p0, p1].into_iter().take(steps).enumerate() {
                let d: [u16; STEP] = bytemuck::cast(p);
                out[(2 * c + s) * STEP..][..STEP].copy_from_slice(&d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairdot::e4m3_to_bf16;

    /// The tables against concord_core's e4m3 decode (the oracle), every non-NaN code.
    #[test]
    fn every_code_decodes_to_its_value() {
        for c in 0u8..=255 {
            if c & 0x7F == 0x7F {
                continue;
            }
            let em = usize::from(c & 0x7F);
            let bits = (u16::from(HIGH[em]) << 8 | u16::from(LOW[em])) | (u16::from(c & 0x80) << 8);
            let want = concord_core::convert::e4m3_to_f32(c);
            assert_eq!(
                f32::from_bits(u32::from(bits) << 16).to_bits(),
                want.to_bits(),
                "code {c:#04x}"
            );
            assert_eq!(bits, e4m3_to_bf16(c), "code {c:#04x}");
        }
    }
}
