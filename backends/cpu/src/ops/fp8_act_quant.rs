//! Per row, per 128 columns (the last block may be partial):
//! `amax = max |x|`, `s = fmt(max(amax, 1e-4) / 448)`, `q = e4m3_satfinite(x / s)`, where
//! `fmt` is the identity or, for `ue8m0`, the rounding up to a power of two (bit operations,
//! [`concord_core::round_up_to_power_of_two`]).
//!
//! A NaN anywhere in a block makes its amax, and so its scale, NaN (`max(NaN, 1e-4)` stays
//! NaN here), and every q of that block becomes the NaN code 0x7F. An infinite element gives
//! s = ∞: the finite elements quantize to 0 and the infinite one to NaN (∞/∞).
use concord_core::convert::f32_to_e4m3_satfinite;
use concord_core::{ActScaleFormat, Result};
use concord_ops::{Fp8ActQuant, FP8_ACT_BLOCK};
use rayon::prelude::*;

use crate::storage::{In, Out};

/// The smallest amax a block is scaled by (DeepSeek's clamp).
const AMAX_FLOOR: f32 = 1e-4;

pub(crate) fn run(op: &Fp8ActQuant, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let x = ins[0].f32s()?;
    let k = ins[0].desc.shape[1];
    let kb = k.div_ceil(FP8_ACT_BLOCK);
    if k == 0 {
        return Ok(());
    }
    let (q_out, s_out) = outs.split_at_mut(1);
    let q = &mut *q_out[0].bytes;
    let s = s_out[0].f32s();
    q.par_chunks_mut(k)
        .zip(s.par_chunks_mut(kb))
        .zip(x.par_chunks(k))
        .with_min_len(super::min_rows(x.len() / k, k))
        .for_each(|((q, s), x)| quantize_row(x, q, s, op.scale_fmt));
    Ok(())
}

/// Quantizes one row: `q` gets the e4m3 codes, `s` one scale per 128 columns, in `scale_fmt`.
/// AVX-512F CPUs run `e4m3_quant_avx512`'s kernel (the same bits), others [`quantize_row_scalar`].
pub(crate) fn quantize_row(x: &[f32], q: &mut [u8], s: &mut [f32], scale_fmt: ActScaleFormat) {
    #[cfg(target_arch = "x86_64")]
    if let Some(avx512) = crate::avx512f_sys::Avx512F::detect() {
        avx512.quantize_row(x, q, s, scale_fmt);
        return;
    }
    quantize_row_scalar(x, q, s, scale_fmt)
}

/// [`quantize_row`] one element at a time: the definition.
fn quantize_row_scalar(x: &[f32], q: &mut [u8], s: &mut [f32], scale_fmt: ActScaleFormat) {
    for ((xb, qb), sb) in x
        .chunks(FP8_ACT_BLOCK)
        .zip(q.chunks_mut(FP8_ACT_BLOCK))
        .zip(s.iter_mut())
    {
        let scale = block_scale(block_amax(xb), scale_fmt);
        *sb = scale;
        for (d, v) in qb.iter_mut().zip(xb) {
            *d = f32_to_e4m3_satfinite(*v / scale);
        }
    }
}

/// `max |x|` over a block, NaN as soon as one element is NaN (the last NaN's bits, sign cleared).
pub(crate) fn block_amax(xb: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    for v in xb {
        let a = v.abs();
        if a.is_nan() || a > amax {
            amax = a;
        }
    }
    amax
}

/// The block's scale for its amax: `fmt(max(amax, 1e-4) / 448)`.
pub(crate) fn block_scale(amax: f32, scale_fmt: ActScaleFormat) -> f32 {
    // Written so that a NaN amax stays NaN.
    let clamped = if amax < AMAX_FLOOR { AMAX_FLOOR } else { amax };
    scale_fmt.apply(clamped / 448.0)
}
