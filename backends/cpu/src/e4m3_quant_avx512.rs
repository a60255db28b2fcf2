//! fp8_act_quant's row quantization sixteen lanes at a time on AVX-512F, bit-identical to the
//! scalar `ops::fp8_act_quant` loop: the same scales, and per element the codes of
//! `concord_core::convert::f32_to_e4m3_satfinite(x / s)`.
//!
//! The conversion performs the scalar function's integer steps on each lane (its `min` with
//! 448's bits, the rebias and round-to-nearest-even of normal magnitudes, the `+ 2^14` f32
//! addition that rounds subnormal ones), the choice between them and the NaN case as masks.
//! `x / s` is `vdivps`, an IEEE division like the scalar one.
//!
//! The block's amax is `vmaxps` over `|x|` from +0.0: without NaN every operand is ≥ +0.0, so
//! the maximum is the scalar loop's value, bits included. A block holding a NaN takes the
//! scalar amax (which NaN it keeps sets the scale's NaN bits).
//!
//! Every function here is safe code compiled with AVX-512F; the call from code without it is
//! `avx512f_sys`'s, behind the CPU check.
use std::arch::x86_64::{
    __m128i, __m512, __m512i, __mmask16, _mm512_add_epi32, _mm512_add_ps, _mm512_and_si512,
    _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmp_ps_mask, _mm512_cmpgt_epi32_mask,
    _mm512_cmplt_epi32_mask, _mm512_cvtepi32_epi8, _mm512_div_ps, _mm512_mask_blend_epi32,
    _mm512_max_ps, _mm512_min_epi32, _mm512_or_si512, _mm512_reduce_max_ps, _mm512_set1_epi32,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_srli_epi32, _mm512_sub_epi32, _CMP_UNORD_Q,
};

use concord_core::ActScaleFormat;
use concord_ops::FP8_ACT_BLOCK;

use crate::ops::{block_amax, block_scale};

const LANES: usize = 16;

/// f32 bits of 448, the largest finite e4m3fn value (the scalar function's saturation).
const MAX_BITS: i32 = 0x43E0_0000;
/// f32 bits of +∞: larger magnitudes are NaN.
const INF_BITS: i32 = 0x7F80_0000;
/// f32 bits of 2^-6, the smallest normal e4m3fn magnitude.
const MIN_NORMAL_BITS: i32 = (127 - 6) << 23;
/// The exponent rebias from f32 (127) to e4m3 (7), in place in the f32 exponent field.
const REBIAS: i32 = (127 - 7) << 23;
/// f32 mantissa bits dropped to keep e4m3's 3.
const DROPPED: u32 = 23 - 3;
/// f32 bits of 2^14: adding it puts e4m3's subnormal quantum 2^-9 at the f32 ulp.
const SUBNORMAL_MAGIC: i32 = (151 - 7 - 3) << 23;
/// e4m3fn's (positive) NaN code, which every NaN input gives.
const NAN_CODE: i32 = 0x7F;

/// `f32_to_e4m3_satfinite` on each lane, the code in the lane's low byte.
#[target_feature(enable = "avx512f")]
fn e4m3_satfinite16(x: __m512) -> __m512i {
    let u = _mm512_castps_si512(x);
    let sign = _mm512_and_si512(_mm512_srli_epi32::<24>(u), _mm512_set1_epi32(0x80));
    let a = _mm512_and_si512(u, _mm512_set1_epi32(0x7FFF_FFFF));
    let nan = _mm512_cmpgt_epi32_mask(a, _mm512_set1_epi32(INF_BITS));
    // Every magnitude bit pattern is a non-negative i32, so the signed min is the unsigned one.
    let a = _mm512_min_epi32(a, _mm512_set1_epi32(MAX_BITS));

    // Normal range: rebias, then round the dropped bits to nearest even.
    let r = _mm512_sub_epi32(a, _mm512_set1_epi32(REBIAS));
    let odd = _mm512_and_si512(_mm512_srli_epi32::<DROPPED>(r), _mm512_set1_epi32(1));
    let normal = _mm512_srli_epi32::<DROPPED>(_mm512_add_epi32(
        _mm512_add_epi32(r, _mm512_set1_epi32((1 << (DROPPED - 1)) - 1)),
        odd,
    ));

    // Subnormal range: the f32 addition rounds (ties to even); its low bits are the code.
    let magic = _mm512_set1_epi32(SUBNORMAL_MAGIC);
    let sum = _mm512_add_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(magic));
    let subnormal = _mm512_sub_epi32(_mm512_castps_si512(sum), magic);

    let below_normal = _mm512_cmplt_epi32_mask(a, _mm512_set1_epi32(MIN_NORMAL_BITS));
    let mag = _mm512_mask_blend_epi32(below_normal, normal, subnormal);
    let code = _mm512_or_si512(sign, mag);
    _mm512_mask_blend_epi32(nan, code, _mm512_set1_epi32(NAN_CODE))
}

/// The sixteen lanes' low bytes.
#[target_feature(enable = "avx512f")]
fn low_bytes(v: __m512i) -> [u8; LANES] {
    let packed: __m128i = _mm512_cvtepi32_epi8(v);
    bytemuck::cast(packed)
}

/// Writes the first `q.len() ≤ 16` codes (a full register's in one store).
fn store(q: &mut [u8], codes: [u8; LANES]) {
    match <&mut [u8; LANES]>::try_from(&mut *q) {
        Ok(full) => *full = codes,
        Err(_) => q.copy_from_slice(&codes[..q.len()]),
    }
}

/// Up to sixteen values in the low lanes of a register, `fill` in the others.
#[target_feature(enable = "avx512f")]
fn load(x: &[f32], fill: f32) -> __m512 {
    match <[f32; LANES]>::try_from(x) {
        Ok(full) => bytemuck::cast(full),
        Err(_) => {
            let mut a = [fill; LANES];
            a[..x.len()].copy_from_slice(x);
            bytemuck::cast(a)
        }
    }
}

/// `q[i] = f32_to_e4m3_satfinite(x[i])` for every element (`q.len() == x.len()`).
#[target_feature(enable = "avx512f")]
pub(crate) fn to_e4m3_satfinite(x: &[f32], q: &mut [u8]) {
    debug_assert_eq!(x.len(), q.len());
    for (xc, qc) in x.chunks(LANES).zip(q.chunks_mut(LANES)) {
        store(qc, low_bytes(e4m3_satfinite16(load(xc, 0.0))));
    }
}

/// The block's `max |x|` as the scalar loop takes it.
#[target_feature(enable = "avx512f")]
fn amax(xb: &[f32]) -> f32 {
    let magnitude = _mm512_set1_epi32(0x7FFF_FFFF);
    let mut m = _mm512_setzero_ps();
    let mut nan: __mmask16 = 0;
    for xc in xb.chunks(LANES) {
        let a = _mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(load(xc, 0.0)),
            magnitude,
        ));
        nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a);
        m = _mm512_max_ps(m, a);
    }
    if nan != 0 {
        return block_amax(xb);
    }
    _mm512_reduce_max_ps(m)
}

/// `ops::fp8_act_quant::quantize_row`: `q` gets the codes, `s` one scale per 128 columns.
#[target_feature(enable = "avx512f")]
pub(crate) fn quantize_row(x: &[f32], q: &mut [u8], s: &mut [f32], scale_fmt: ActScaleFormat) {
    for ((xb, qb), sb) in x
        .chunks(FP8_ACT_BLOCK)
        .zip(q.chunks_mut(FP8_ACT_BLOCK))
        .zip(s.iter_mut())
    {
        let scale = block_scale(amax(xb), scale_fmt);
        *sb = scale;
        let s16 = _mm512_set1_ps(scale);
        for (xc, qc) in xb.chunks(LANES).zip(qb.chunks_mut(LANES)) {
            store(
                qc,
                low_bytes(e4m3_satfinite16(_mm512_div_ps(load(xc, 0.0), s16))),
            );
        }
    }
}
