//! The contract's exp and softmax (docs/numerics.md §5.1, §5.3) sixteen lanes at a time on
//! AVX-512F, bit-identical to `concord_core::numerics::math::{exp, softmax_in_place}`.
//!
//! Each lane performs the scalar definition's operations in its order, each rounded on its own:
//! separate multiplies and adds (never a fused multiply-add), `floor` as `vrndscaleps`
//! (exact), the 2^n scaling built from exponent bits, the NaN / overflow / underflow cases
//! as masks. The scalar code's three scaling branches become one form, `(y · 2^e1) · 2^e2`:
//! e1 = n, e2 = 0 in the normal range (`· 1.0` is exact), e1 = 127, e2 = 1 for n = 128 and
//! e1 = n + 126, e2 = −126 below −126, the scalar branches' own factors in their order.
//!
//! Softmax: the maximum is taken with `vmaxps` (the same value as `reduce::max` on rows
//! without NaN, up to the sign of a zero maximum, which cannot change any `exp(v − m)`);
//! rows whose maximum is not finite (NaN, +∞, all −∞) go to the scalar definition. The sum
//! is `reduce::sum`'s canonical order — one 16-lane accumulator per 128-term block, the
//! lane tree, the block totals from +0.0 — taken as the exps are written; the division is
//! IEEE per element.
//!
//! Every function here is safe code compiled with AVX-512F; the call from code without it is
//! `avx512f_sys`'s, behind the CPU check.
use std::arch::x86_64::{
    __m512, __m512i, __mmask16, _mm512_add_epi32, _mm512_add_ps, _mm512_castsi512_ps,
    _mm512_cmp_ps_mask, _mm512_cmpgt_epi32_mask, _mm512_cmplt_epi32_mask, _mm512_cvttps_epi32,
    _mm512_div_ps, _mm512_mask_add_ps, _mm512_mask_blend_epi32, _mm512_mask_blend_ps,
    _mm512_max_ps, _mm512_mul_ps, _mm512_reduce_max_ps, _mm512_roundscale_ps, _mm512_set1_epi32,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_slli_epi32, _mm512_sub_epi32, _mm512_sub_ps,
    _CMP_GT_OQ, _CMP_LT_OQ, _CMP_UNORD_Q, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEG_INF,
};

use concord_core::numerics::math::{self, EXP_C1, EXP_C2, EXP_OVERFLOW_X, EXP_UNDERFLOW_X, LOG2E};
use concord_core::numerics::reduce::{REDUCE_BLOCK, REDUCE_LANES};

const LANES: usize = REDUCE_LANES;
const _: () = assert!(LANES == 16 && REDUCE_BLOCK.is_multiple_of(LANES));

/// Cephes `expf` coefficients, highest degree first: `math::exp`'s own table.
const P: [f32; 6] = math::EXP_POLY;

/// `floor` in `vrndscaleps`'s immediate: round toward −∞, no scaling, no exception.
const FLOOR: i32 = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;

/// 2^e per lane for normal exponents −126 ≤ e ≤ 127 (exact, from the bit pattern).
#[target_feature(enable = "avx512f")]
fn pow2(e: __m512i) -> __m512 {
    _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
        e,
        _mm512_set1_epi32(127),
    )))
}

/// `math::exp` on each lane.
#[target_feature(enable = "avx512f")]
pub(crate) fn exp16(x: __m512) -> __m512 {
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
    let over = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_set1_ps(EXP_OVERFLOW_X));
    let under = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_UNDERFLOW_X));

    let t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _mm512_set1_ps(0.5));
    let n = _mm512_roundscale_ps::<FLOOR>(t);
    let r = _mm512_sub_ps(
        _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(EXP_C1))),
        _mm512_mul_ps(n, _mm512_set1_ps(EXP_C2)),
    );
    let mut p = _mm512_set1_ps(P[0]);
    for c in &P[1..] {
        p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(*c));
    }
    let y = _mm512_add_ps(
        _mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r),
        _mm512_set1_ps(1.0),
    );

    // n ∈ [−150, 128] on the lanes the masks below do not replace.
    let n = _mm512_cvttps_epi32(n);
    let high = _mm512_cmpgt_epi32_mask(n, _mm512_set1_epi32(127));
    let low = _mm512_cmplt_epi32_mask(n, _mm512_set1_epi32(-126));
    let e1 = _mm512_mask_blend_epi32(high, n, _mm512_set1_epi32(127));
    let e1 = _mm512_mask_blend_epi32(low, e1, _mm512_add_epi32(n, _mm512_set1_epi32(126)));
    let e2 = _mm512_sub_epi32(n, e1);
    let scaled = _mm512_mul_ps(_mm512_mul_ps(y, pow2(e1)), pow2(e2));

    let v = _mm512_mask_blend_ps(under, scaled, _mm512_setzero_ps());
    let v = _mm512_mask_blend_ps(over, v, _mm512_set1_ps(f32::INFINITY));
    _mm512_mask_blend_ps(nan, v, x)
}

/// The first `n ≤ 16` lanes set.
fn first_lanes(n: usize) -> __mmask16 {
    debug_assert!(n <= LANES);
    ((1u32 << n) - 1) as __mmask16
}

/// The tail's values in the low lanes of a register, `fill` in the others.
fn load_tail(tail: &[f32], fill: f32) -> __m512 {
    let mut a = [fill; LANES];
    a[..tail.len()].copy_from_slice(tail);
    bytemuck::cast(a)
}

/// Writes the first `tail.len()` lanes of `v` to `tail`.
fn store_tail(tail: &mut [f32], v: __m512) {
    let a: [f32; LANES] = bytemuck::cast(v);
    tail.copy_from_slice(&a[..tail.len()]);
}

/// `x[i] = math::exp(x[i])` for every element.
#[target_feature(enable = "avx512f")]
pub(crate) fn exp_in_place(x: &mut [f32]) {
    let (chunks, tail) = x.as_chunks_mut::<LANES>();
    for c in chunks {
        *c = bytemuck::cast(exp16(bytemuck::cast(*c)));
    }
    if !tail.is_empty() {
        let v = exp16(load_tail(tail, 0.0));
        store_tail(tail, v);
    }
}

/// `math::softmax_in_place`, bit for bit.
#[target_feature(enable = "avx512f")]
pub(crate) fn softmax_in_place(x: &mut [f32]) {
    let Some(m) = finite_max(x) else {
        return math::softmax_in_place(x);
    };
    let m16 = _mm512_set1_ps(m);
    let mut total = 0.0f32;
    for block in x.chunks_mut(REDUCE_BLOCK) {
        let (chunks, tail) = block.as_chunks_mut::<LANES>();
        let mut lanes = _mm512_setzero_ps();
        for c in chunks {
            let e = exp16(_mm512_sub_ps(bytemuck::cast(*c), m16));
            *c = bytemuck::cast(e);
            lanes = _mm512_add_ps(lanes, e);
        }
        if !tail.is_empty() {
            let e = exp16(_mm512_sub_ps(load_tail(tail, 0.0), m16));
            store_tail(tail, e);
            lanes = _mm512_mask_add_ps(lanes, first_lanes(tail.len()), lanes, e);
        }
        total += lane_tree(bytemuck::cast(lanes));
    }
    let s = _mm512_set1_ps(total);
    let (chunks, tail) = x.as_chunks_mut::<LANES>();
    for c in chunks {
        *c = bytemuck::cast(_mm512_div_ps(bytemuck::cast(*c), s));
    }
    if !tail.is_empty() {
        let q = _mm512_div_ps(load_tail(tail, 1.0), s);
        store_tail(tail, q);
    }
}

/// The row's maximum where it is finite; `None` where the row holds a NaN or +∞ or is all −∞
/// (or empty): the cases the scalar definition settles without the exp pass.
#[target_feature(enable = "avx512f")]
fn finite_max(x: &[f32]) -> Option<f32> {
    let (chunks, tail) = x.as_chunks::<LANES>();
    let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut nan: __mmask16 = 0;
    for c in chunks {
        let v: __m512 = bytemuck::cast(*c);
        nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
        m = _mm512_max_ps(m, v);
    }
    let v = load_tail(tail, f32::NEG_INFINITY);
    nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
    let m = _mm512_reduce_max_ps(_mm512_max_ps(m, v));
    (nan == 0 && m.is_finite()).then_some(m)
}

/// The canonical lane tree (docs/numerics.md §4 step 3): `lane[j] += lane[j + s]` for
/// s = 8, 4, 2, 1; the block total is `lane[0]`.
fn lane_tree(mut lane: [f32; LANES]) -> f32 {
    for s in [8, 4, 2, 1] {
        for j in 0..s {
            lane[j] += lane[j + s];
        }
    }
    lane[0]
}
