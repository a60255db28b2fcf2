//! The pair-dot tier of prefill's `y = x · wᵀ`: AVX512-BF16's `vdpbf16ps`, which performs
//! the contract's canonical additions (docs/numerics.md §4) when its operands are laid out in
//! pair order and every product is exact and normal.
//!
//! `vdpbf16ps acc, a, b` computes, per f32 lane l, `(acc[l] + a[2l+1]·b[2l+1]) + a[2l]·b[2l]`:
//! two round-to-nearest f32 additions, the odd slot first (products exact; DAZ/FTZ implied).
//! The canonical block sum has lane l add the rounded products of terms l, l+16, l+32, … of
//! each 128-term block in order. So a row is packed per 32-term step c of a block as
//! slot 2l+1 = term c+l, slot 2l = term c+l+16 ([`pack_row`]), and one `vdpbf16ps` per step
//! is exactly lane l's next two additions. Missing terms of a block's last step are +0 in
//! both operands: they add +0·+0 = +0 to a lane that is never -0 (as `blocked`'s tails).
//!
//! The additions are the canonical ones only if every product is exactly an f32 and nothing
//! is subnormal (the instruction flushes subnormals). The callers guarantee it
//! ([`bf16_term_is_safe`], [`e4m3_code_is_safe`]): e4m3 values are bf16 values whose products
//! are exact and at least 2⁻¹⁸ (NaN codes excluded); BF16 weights qualify when x is made of
//! bf16 values and all nonzero magnitudes of both lie in [2⁻⁵⁰, 2⁵⁰), so products are exact
//! normal numbers ≥ 2⁻¹⁰⁰ and every partial sum is a multiple of 2⁻¹¹⁵ — never subnormal.
//!
//! Every function here is safe code compiled with the AVX-512 BF16 features; the call from
//! code without them is `pairdot_sys`'s, behind the CPU check.
use std::arch::x86_64::{
    __m256i, __m512, __m512bh, __m512i, _mm512_add_epi16, _mm512_add_ps, _mm512_and_si512,
    _mm512_cmplt_epu16_mask, _mm512_cvtepu8_epi16, _mm512_dpbf16_ps, _mm512_mask_blend_epi16,
    _mm512_or_si512, _mm512_permutexvar_epi16, _mm512_set1_epi16, _mm512_setzero_ps,
    _mm512_shuffle_f32x4, _mm512_shuffle_ps, _mm512_slli_epi16,
};

use concord_core::numerics::reduce::REDUCE_BLOCK;

use crate::blocked::{Fold, LANES, MR, NR};
use crate::elem::OutElem;

const BLOCK: usize = REDUCE_BLOCK;
/// Terms per `vdpbf16ps`: two per lane.
pub(crate) const STEP: usize = 2 * LANES;
const _: () = assert!(BLOCK.is_multiple_of(STEP) && MR == 4 && NR == 4);

/// Bits of the smallest and one past the largest safe magnitude's exponent field
/// (2⁻⁵⁰ and 2⁵⁰; the bias is 127 in both f32 and bf16).
const SAFE_EXP: (u32, u32) = (127 - 50, 127 + 50);

/// Whether an f32 term (bits) of x may enter a pair dot against BF16 weights: exactly a
/// bf16 value (low 16 bits zero) that is ±0 or of magnitude in [2⁻⁵⁰, 2⁵⁰).
#[inline]
pub(crate) fn f32_term_is_safe(v: f32) -> bool {
    let b = v.to_bits();
    b & 0xFFFF == 0 && bf16_term_is_safe((b >> 16) as u16)
}

/// Whether a BF16 value (bits) may enter a pair dot: ±0 or magnitude in [2⁻⁵⁰, 2⁵⁰).
#[inline]
pub(crate) fn bf16_term_is_safe(b: u16) -> bool {
    let e = u32::from(b >> 7) & 0xFF;
    b & 0x7FFF == 0 || (SAFE_EXP.0..SAFE_EXP.1).contains(&e)
}

/// Whether an e4m3fn code may enter a pair dot: every code but the two NaNs.
#[inline]
pub(crate) fn e4m3_code_is_safe(c: u8) -> bool {
    c & 0x7F != 0x7F
}

/// The bf16 bits of an e4m3fn code's value (exact; not for the NaN codes).
#[inline]
pub(crate) fn e4m3_to_bf16(c: u8) -> u16 {
    let sign = u16::from(c & 0x80) << 8;
    let em = u16::from(c & 0x7F);
    sign | if em < 8 {
        SUBNORMAL_BF16[em as usize]
    } else {
        (em << 4) + ((127 - 7) << 7)
    }
}

/// The bf16 bits of the e4m3 subnormals `em · 2⁻⁹` (em = 0 … 7), padded to one register.
const SUBNORMAL_BF16: [u16; STEP] = {
    let mut t = [0u16; STEP];
    // 2⁻⁹, 2⁻⁸, 1.5·2⁻⁸, then 2⁻⁷ · {1, 1.25, 1.5, 1.75}.
    t[1] = 118 << 7;
    t[2] = 119 << 7;
    t[3] = (119 << 7) | 0x40;
    t[4] = 120 << 7;
    t[5] = (120 << 7) | 0x20;
    t[6] = (120 << 7) | 0x40;
    t[7] = (120 << 7) | 0x60;
    t
};

/// The length of a k-term row in pair order: whole blocks, the last one's steps padded.
pub(crate) fn packed_len(k: usize) -> usize {
    let whole = k / BLOCK * BLOCK;
    whole + (k - whole).next_multiple_of(STEP)
}

/// `dst` (`packed_len(src.len())`) = `src` as bf16 bits in pair order: per 32-term step c of
/// each block, slot 2l+1 = term c+l and slot 2l = term c+l+16, +0 where the block ends.
pub(crate) fn pack_row<E: Copy>(src: &[E], dst: &mut [u16], bf16: impl Fn(E) -> u16) {
    for (bi, block) in src.chunks(BLOCK).enumerate() {
        for (q, step) in block.chunks(STEP).enumerate() {
            let d = &mut dst[bi * BLOCK + q * STEP..][..STEP];
            for l in 0..LANES {
                d[2 * l + 1] = step.get(l).map_or(0, |&e| bf16(e));
                d[2 * l] = step.get(l + LANES).map_or(0, |&e| bf16(e));
            }
        }
    }
}

/// `vpermw` indices from natural order to pair order: slot 2l+1 ← l, slot 2l ← l+16.
const PAIR_ORDER: [u16; STEP] = {
    let mut t = [0u16; STEP];
    let mut l = 0;
    while l < LANES {
        t[2 * l + 1] = l as u16;
        t[2 * l] = (l + LANES) as u16;
        l += 1;
    }
    t
};

/// The first 32 elements of `s` (fewer: +0 after). A whole step is one fixed-size copy (a
/// load); only a block's last, partial step copies element by element.
#[inline(always)]
fn first32<E: Copy + Default>(s: &[E]) -> [E; STEP] {
    if let Some(a) = s.first_chunk::<STEP>() {
        return *a;
    }
    let mut a = [E::default(); STEP];
    for (d, v) in a.iter_mut().zip(s) {
        *d = *v;
    }
    a
}

/// A weight element the pair-dot tier takes: BF16 bits or e4m3fn codes.
pub(crate) trait PairWeight: Copy + Send + Sync + 'static {
    /// The row as the one of the two kinds it is.
    fn row(s: &[Self]) -> WeightRow<'_>;
}

/// A weight row of one of the kinds [`PairWeight`] covers.
pub(crate) enum WeightRow<'a> {
    /// BF16 bits.
    Bf16(&'a [u16]),
    /// e4m3fn codes.
    E4m3(&'a [u8]),
}

impl PairWeight for u16 {
    #[inline(always)]
    fn row(s: &[u16]) -> WeightRow<'_> {
        WeightRow::Bf16(s)
    }
}

impl PairWeight for u8 {
    #[inline(always)]
    fn row(s: &[u8]) -> WeightRow<'_> {
        WeightRow::E4m3(s)
    }
}

/// Up to 32 e4m3 codes as bf16 bits in 16-bit lanes (+0 past the end): normal codes rebias
/// the exponent (`(em << 4) + (120 << 7)`), subnormal ones (em < 8) come from
/// [`SUBNORMAL_BF16`]; the sign moves to bit 15. Exactly [`e4m3_to_bf16`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn e4m3x32(s: &[u8]) -> __m512i {
    let codes = _mm512_cvtepu8_epi16(bytemuck::cast::<[u8; STEP], __m256i>(first32(s)));
    let em = _mm512_and_si512(codes, _mm512_set1_epi16(0x7F));
    let sign = _mm512_slli_epi16::<8>(_mm512_and_si512(codes, _mm512_set1_epi16(0x80)));
    let normal = _mm512_add_epi16(
        _mm512_slli_epi16::<4>(em),
        _mm512_set1_epi16((127 - 7) << 7),
    );
    let sub = _mm512_permutexvar_epi16(em, bytemuck::cast(SUBNORMAL_BF16));
    let is_sub = _mm512_cmplt_epu16_mask(em, _mm512_set1_epi16(8));
    _mm512_or_si512(sign, _mm512_mask_blend_epi16(is_sub, normal, sub))
}

/// Up to 32 weights as bf16 bits in natural order, +0 past the end.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn natural32<W: PairWeight>(s: &[W]) -> __m512i {
    match W::row(s) {
        WeightRow::Bf16(r) => bytemuck::cast(first32(r)),
        WeightRow::E4m3(r) => e4m3x32(r),
    }
}

/// 32 terms in natural order put into pair order (one `vpermw`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(crate) fn pair_order(natural: __m512i) -> __m512bh {
    bytemuck::cast(_mm512_permutexvar_epi16(
        bytemuck::cast(PAIR_ORDER),
        natural,
    ))
}

/// Weight row `src` (k terms) into `dst` in pair order, 32 terms per permute in registers.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn pack_weight_row<W: PairWeight>(src: &[W], dst: &mut [u16]) {
    let k = src.len();
    for b in (0..k).step_by(BLOCK) {
        let e = (b + BLOCK).min(k);
        for c in (b..e).step_by(STEP) {
            let s = (c + STEP).min(e);
            let d: [u16; STEP] = bytemuck::cast(pair_order(natural32(&src[c..s])));
            dst[c..c + STEP].copy_from_slice(&d);
        }
    }
}

/// 32 packed terms at the start of `s` (one unaligned load: a fixed-size copy).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(crate) fn load(s: &[u16]) -> __m512bh {
    let a: &[u16; STEP] = s[..STEP].try_into().expect("32 packed terms");
    bytemuck::cast(*a)
}

/// The [`MR`] × [`NR`] outputs of packed rows `x` (rows `m` of x) and packed weight rows `w`
/// (rows `j`), k terms each: per block one `vdpbf16ps` per 32 terms into one 16-lane
/// accumulator per output, the fixed tree, then `fold` (element r·NR + q is output (r, q)).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn micro<F: Fold>(
    x: [&[u16]; MR],
    w: [&[u16]; NR],
    k: usize,
    m: [usize; MR],
    j: [usize; NR],
    fold: &F,
) -> [f32; MR * NR] {
    let mut total = [0.0f32; MR * NR];
    for (kb, b) in (0..k).step_by(BLOCK).enumerate() {
        let end = b + (k - b).min(BLOCK).next_multiple_of(STEP);
        let steps = (end - b) / STEP;
        // Every row cut to this block's steps up front, so the loop below indexes slices of
        // known length `steps` (no bounds check per load). No closures: they would not
        // inherit the kernel's features and stay calls.
        let xs = [
            steps_of(x[0], b, end, steps),
            steps_of(x[1], b, end, steps),
            steps_of(x[2], b, end, steps),
            steps_of(x[3], b, end, steps),
        ];
        let ws = [
            steps_of(w[0], b, end, steps),
            steps_of(w[1], b, end, steps),
            steps_of(w[2], b, end, steps),
            steps_of(w[3], b, end, steps),
        ];
        let z = _mm512_setzero_ps();
        let (mut a00, mut a01, mut a02, mut a03) = (z, z, z, z);
        let (mut a10, mut a11, mut a12, mut a13) = (z, z, z, z);
        let (mut a20, mut a21, mut a22, mut a23) = (z, z, z, z);
        let (mut a30, mut a31, mut a32, mut a33) = (z, z, z, z);
        for c in 0..steps {
            let (w0, w1, w2, w3) = (
                step(&ws[0][c]),
                step(&ws[1][c]),
                step(&ws[2][c]),
                step(&ws[3][c]),
            );
            let x0 = step(&xs[0][c]);
            a00 = _mm512_dpbf16_ps(a00, x0, w0);
            a01 = _mm512_dpbf16_ps(a01, x0, w1);
            a02 = _mm512_dpbf16_ps(a02, x0, w2);
            a03 = _mm512_dpbf16_ps(a03, x0, w3);
            let x1 = step(&xs[1][c]);
            a10 = _mm512_dpbf16_ps(a10, x1, w0);
            a11 = _mm512_dpbf16_ps(a11, x1, w1);
            a12 = _mm512_dpbf16_ps(a12, x1, w2);
            a13 = _mm512_dpbf16_ps(a13, x1, w3);
            let x2 = step(&xs[2][c]);
            a20 = _mm512_dpbf16_ps(a20, x2, w0);
            a21 = _mm512_dpbf16_ps(a21, x2, w1);
            a22 = _mm512_dpbf16_ps(a22, x2, w2);
            a23 = _mm512_dpbf16_ps(a23, x2, w3);
            let x3 = step(&xs[3][c]);
            a30 = _mm512_dpbf16_ps(a30, x3, w0);
            a31 = _mm512_dpbf16_ps(a31, x3, w1);
            a32 = _mm512_dpbf16_ps(a32, x3, w2);
            a33 = _mm512_dpbf16_ps(a33, x3, w3);
        }
        let sums = trees16([
            a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33,
        ]);
        fold.fold_tile(m, j, kb, &mut total, &sums);
    }
    total
}

/// Packed terms `b..end` of row `r` as its `steps` 32-term steps.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn steps_of(r: &[u16], b: usize, end: usize, steps: usize) -> &[[u16; STEP]] {
    &r[b..end].as_chunks::<STEP>().0[..steps]
}

/// One 32-term step of packed terms (a fixed-size copy: one unaligned load). A function with
/// the kernel's features, not a closure, so that it inlines into the kernel.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn step(s: &[u16; STEP]) -> __m512bh {
    bytemuck::cast(*s)
}

/// One level of [`trees16`] that moves whole 128-bit quarters (s = 8: 16 lanes per
/// accumulator in, 8 out; s = 4: 8 in, 4 out): `lo + hi`, lo holding the low half of every
/// accumulator's lanes (those of a, then those of b) and hi the high halves at the same
/// places, so lane by lane it is the tree's `lane[j] += lane[j + s]`. One `vshuff32x4` per
/// operand: cheaper than the two-table `vpermt2ps` it replaces, and needs no index register.
#[inline]
#[target_feature(enable = "avx512f")]
fn level_f32x4<const LO: i32, const HI: i32>(a: __m512, b: __m512) -> __m512 {
    _mm512_add_ps(
        _mm512_shuffle_f32x4::<LO>(a, b),
        _mm512_shuffle_f32x4::<HI>(a, b),
    )
}

/// One level of [`trees16`] inside each 128-bit quarter (s = 2 and 1; `vshufps`, the
/// cheapest shuffle): per quarter, `lo` takes two lanes of a then two of b, `hi` the two
/// lanes s further on.
#[inline]
#[target_feature(enable = "avx512f")]
fn level_in_quarter<const LO: i32, const HI: i32>(a: __m512, b: __m512) -> __m512 {
    _mm512_add_ps(_mm512_shuffle_ps::<LO>(a, b), _mm512_shuffle_ps::<HI>(a, b))
}

/// `shufps`/`shuff32x4` immediate picking elements (or quarters) p0, p1 of a, p2, p3 of b.
const fn pick(p0: i32, p1: i32, p2: i32, p3: i32) -> i32 {
    p0 | p1 << 2 | p2 << 4 | p3 << 6
}

/// The fixed lane tree (`blocked::tree`: `lane[j] += lane[j+s]` for s = 8, 4, 2, 1) of 16
/// accumulators at once, element i of the result being accumulator i's: every addition is
/// the same two values as the scalar tree's, four levels of vector adds instead of 240
/// scalar ones (which cost more than the block's products).
///
/// Levels s = 8 and 4 move 128-bit quarters, s = 2 and 1 lanes inside quarters; that leaves
/// accumulator i at element 4·(i mod 4) + i/4, so the inputs go in transposed (a free
/// renaming of registers) and the result comes out in order.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn trees16(v: [__m512; 16]) -> [f32; 16] {
    let v: [__m512; 16] = std::array::from_fn(|p| v[4 * (p % 4) + p / 4]);
    let l8: [__m512; 8] = std::array::from_fn(|i| {
        level_f32x4::<{ pick(0, 1, 0, 1) }, { pick(2, 3, 2, 3) }>(v[2 * i], v[2 * i + 1])
    });
    let l4: [__m512; 4] = std::array::from_fn(|i| {
        level_f32x4::<{ pick(0, 2, 0, 2) }, { pick(1, 3, 1, 3) }>(l8[2 * i], l8[2 * i + 1])
    });
    let l2: [__m512; 2] = std::array::from_fn(|i| {
        level_in_quarter::<{ pick(0, 1, 0, 1) }, { pick(2, 3, 2, 3) }>(l4[2 * i], l4[2 * i + 1])
    });
    bytemuck::cast(level_in_quarter::<{ pick(0, 2, 0, 2) }, { pick(1, 3, 1, 3) }>(l2[0], l2[1]))
}

/// Outputs (m, j) for m in `rows`, j in `cols` into `out` [.., ldo] at
/// `(m - rows.0)·ldo + (j - cols.0)`: x packed ([`pack_row`], `packed_len(k)` per row), w
/// [n, k] natural. Each panel of [`NR`] weight rows is packed once, then meets every row of x
/// [`MR`] at a time; partial panels and row groups repeat their last row (not stored).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(crate) fn tile<W: PairWeight, O: OutElem, F: Fold>(
    xp: &[u16],
    k: usize,
    w: &[W],
    rows: (usize, usize),
    cols: (usize, usize),
    fold: &F,
    out: &mut [O],
    ldo: usize,
) {
    let kp = packed_len(k);
    let mut panel = vec![0u16; NR * kp];
    let mut j0 = cols.0;
    while j0 < cols.1 {
        let c = (cols.1 - j0).min(NR);
        for (q, dst) in panel.chunks_exact_mut(kp.max(1)).take(c).enumerate() {
            pack_weight_row(&w[(j0 + q) * k..(j0 + q + 1) * k], dst);
        }
        let j: [usize; NR] = std::array::from_fn(|q| j0 + q.min(c - 1));
        let wr: [&[u16]; NR] = std::array::from_fn(|q| &panel[q.min(c - 1) * kp..][..kp]);
        let mut m0 = rows.0;
        while m0 < rows.1 {
            let r = (rows.1 - m0).min(MR);
            let m: [usize; MR] = std::array::from_fn(|i| m0 + i.min(r - 1));
            let xr: [&[u16]; MR] = m.map(|m| &xp[m * kp..(m + 1) * kp]);
            let v = micro(xr, wr, k, m, j, fold);
            for (i, vr) in v.chunks_exact(NR).enumerate().take(r) {
                let o = &mut out[(m0 + i - rows.0) * ldo + (j0 - cols.0)..][..c];
                for (d, s) in o.iter_mut().zip(vr) {
                    *d = O::store(*s);
                }
            }
            m0 += r;
        }
        j0 += c;
    }
}
