//! The AVX-512 form of `blocked`'s micro-kernel, written with explicit 16-lane vectors
//! (`pulp`'s safe AVX-512 types, picked at run time): one register is exactly the contract's
//! 16 lanes; BF16 weights are widened by a shift, e4m3 weights decoded in integer arithmetic,
//! both in registers. LLVM's automatic vectorisation of the portable kernel picked the wrong
//! dimension for BF16/F32 weights (4-wide across accumulators, with lane-by-lane inserts:
//! slower than the 4-wide dot it replaces), so every weight type takes this form wherever the
//! CPU has AVX-512; the additions are the same as the portable kernel's.
use pulp::x86::V4;
use pulp::{cast, f32x16, u16x16, u32x16, Simd, WithSimd};

use crate::blocked::{tree, Fold, Lanes, LANES, MR, NR};
use crate::elem::{Elem, OutElem};

const BLOCK: usize = concord_core::numerics::reduce::REDUCE_BLOCK;

/// A weight element that has an explicit AVX-512 widening to f32.
pub(crate) trait Load16: Elem {
    /// Whether `blocked` should use this file's kernel for it (when the CPU has AVX-512).
    const EXPLICIT: bool;
    /// Whether a panel of these weights is widened into f32 once when many rows of x use it
    /// (worth it where widening costs more than a load: e4m3).
    const PACK: bool = false;
    /// `s[..16]` widened exactly to f32.
    fn load16(simd: V4, s: &[Self]) -> f32x16;
    /// The elements as BF16 bits, where they are BF16 (for the pair-dot tier).
    fn as_bf16(_: &[Self]) -> Option<&[u16]> {
        None
    }
}

/// The first 16 elements of `s` as an array.
#[inline(always)]
fn first16<E: Copy + Default>(s: &[E]) -> [E; LANES] {
    let mut a = [E::default(); LANES];
    a.copy_from_slice(&s[..LANES]);
    a
}

impl Load16 for f32 {
    const EXPLICIT: bool = true;
    #[inline(always)]
    fn load16(_: V4, s: &[f32]) -> f32x16 {
        cast(first16(s))
    }
}

impl Load16 for u16 {
    const EXPLICIT: bool = true;
    fn as_bf16(s: &[u16]) -> Option<&[u16]> {
        Some(s)
    }
    /// BF16 → f32 is the 16 bits shifted to the top of the word (exact).
    #[inline(always)]
    fn load16(simd: V4, s: &[u16]) -> f32x16 {
        let b: u16x16 = cast(first16(s));
        cast(simd.shl_const_u32x16::<16>(simd.convert_u16x16_to_u32x16(b)))
    }
}

impl Load16 for u8 {
    const EXPLICIT: bool = true;
    const PACK: bool = true;
    /// e4m3fn → f32 in integer arithmetic, exactly `concord_core::convert::e4m3_to_f32`:
    /// normal codes rebias the exponent (7 → 127), subnormal ones are `em · 2⁻⁹` (exact),
    /// 0x7F/0xFF give the NaN bits 0x7FC00000 with the code's sign.
    #[inline(always)]
    fn load16(simd: V4, s: &[u8]) -> f32x16 {
        let b = simd.convert_u8x16_to_u32x16(cast(first16(s)));
        let splat = |v: u32| simd.splat_u32s(v);
        let em = simd.and_u32s(b, splat(0x7F));
        let sign = simd.shl_const_u32x16::<24>(simd.and_u32s(b, splat(0x80)));
        let normal = simd.add_u32s(simd.shl_const_u32x16::<20>(em), splat((127 - 7) << 23));
        let subnormal: u32x16 = cast(simd.mul_f32s(
            simd.convert_i32x16_to_f32x16(cast(em)),
            simd.splat_f32s(1.0 / 512.0),
        ));
        let bits = simd.select_u32s(simd.less_than_u32s(em, splat(0x08)), subnormal, normal);
        let bits = simd.select_u32s(simd.equal_u32s(em, splat(0x7F)), splat(0x7FC0_0000), bits);
        cast(simd.or_u32s(sign, bits))
    }
}

/// The fewer than 16 values of `s` widened in lanes 0 .. s.len(), +0.0 after.
#[inline(always)]
fn load_tail<E: Elem>(s: &[E]) -> f32x16 {
    let mut v = [0.0f32; LANES];
    for (d, e) in v.iter_mut().zip(s) {
        *d = e.f();
    }
    cast(v)
}

/// `blocked::micro` with explicit registers: the [`MR`] × [`NR`] outputs of rows `m` of x and
/// weight rows `j`, each lane adding its rounded products in order (multiply, then add).
#[inline(always)]
fn micro<W: Load16, F: Fold>(
    simd: V4,
    x: [&[f32]; MR],
    w: [&[W]; NR],
    m: [usize; MR],
    j: [usize; NR],
    fold: &F,
) -> [[f32; NR]; MR] {
    let k = x[0].len();
    let mut total = [[0.0f32; NR]; MR];
    let ma = |acc: f32x16, x: f32x16, w: f32x16| simd.add_f32s(acc, simd.mul_f32s(x, w));
    for (kb, b) in (0..k).step_by(BLOCK).enumerate() {
        let e = (b + BLOCK).min(k);
        let full = e - (e - b) % LANES;
        let z = simd.splat_f32s(0.0);
        let (mut a00, mut a01, mut a02, mut a03) = (z, z, z, z);
        let (mut a10, mut a11, mut a12, mut a13) = (z, z, z, z);
        let (mut a20, mut a21, mut a22, mut a23) = (z, z, z, z);
        let (mut a30, mut a31, mut a32, mut a33) = (z, z, z, z);
        macro_rules! chunk {
            ($x0:expr, $x1:expr, $x2:expr, $x3:expr, $w0:expr, $w1:expr, $w2:expr, $w3:expr) => {
                let (w0, w1, w2, w3) = ($w0, $w1, $w2, $w3);
                let x0 = $x0;
                a00 = ma(a00, x0, w0);
                a01 = ma(a01, x0, w1);
                a02 = ma(a02, x0, w2);
                a03 = ma(a03, x0, w3);
                let x1 = $x1;
                a10 = ma(a10, x1, w0);
                a11 = ma(a11, x1, w1);
                a12 = ma(a12, x1, w2);
                a13 = ma(a13, x1, w3);
                let x2 = $x2;
                a20 = ma(a20, x2, w0);
                a21 = ma(a21, x2, w1);
                a22 = ma(a22, x2, w2);
                a23 = ma(a23, x2, w3);
                let x3 = $x3;
                a30 = ma(a30, x3, w0);
                a31 = ma(a31, x3, w1);
                a32 = ma(a32, x3, w2);
                a33 = ma(a33, x3, w3);
            };
        }
        for c in (b..full).step_by(LANES) {
            chunk!(
                f32::load16(simd, &x[0][c..]),
                f32::load16(simd, &x[1][c..]),
                f32::load16(simd, &x[2][c..]),
                f32::load16(simd, &x[3][c..]),
                W::load16(simd, &w[0][c..]),
                W::load16(simd, &w[1][c..]),
                W::load16(simd, &w[2][c..]),
                W::load16(simd, &w[3][c..])
            );
        }
        if full < e {
            // As in `blocked::micro`: lanes past the tail add +0.0, which changes nothing.
            chunk!(
                load_tail(&x[0][full..e]),
                load_tail(&x[1][full..e]),
                load_tail(&x[2][full..e]),
                load_tail(&x[3][full..e]),
                load_tail(&w[0][full..e]),
                load_tail(&w[1][full..e]),
                load_tail(&w[2][full..e]),
                load_tail(&w[3][full..e])
            );
        }
        let t = |v: f32x16| tree(&cast::<f32x16, Lanes>(v));
        let sums = [
            [t(a00), t(a01), t(a02), t(a03)],
            [t(a10), t(a11), t(a12), t(a13)],
            [t(a20), t(a21), t(a22), t(a23)],
            [t(a30), t(a31), t(a32), t(a33)],
        ];
        for r in 0..MR {
            for q in 0..NR {
                total[r][q] = fold.fold(m[r], j[q], kb, total[r][q], sums[r][q]);
            }
        }
    }
    total
}

/// One call of [`tile`]: run by `Simd::vectorize` inside a function compiled with AVX-512
/// enabled. A trait method marked `inline(always)`, not a closure: a closure reaches the
/// kernel through a `FnOnce` shim that LLVM did not always inline, and the kernel then ran
/// without AVX-512, every vector operation a call (measured 60× slower for e4m3 weights).
struct Tile<'a, W, O, F> {
    simd: V4,
    x: &'a [f32],
    k: usize,
    w: &'a [W],
    rows: (usize, usize),
    cols: (usize, usize),
    fold: &'a F,
    out: &'a mut [O],
    ldo: usize,
}

impl<W: Load16, O: OutElem, F: Fold> WithSimd for Tile<'_, W, O, F> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let (simd, fold) = (self.simd, self.fold);
        let t = self;
        let origin = (t.rows.0, t.cols.0);
        if W::PACK && t.rows.1 - t.rows.0 > PACK_ROWS {
            // Widen each panel of NR weight rows once into f32 (exact) and run the f32
            // kernel on it for every row of x, instead of widening it again per 4 rows.
            let mut buf = vec![0.0f32; NR * t.k];
            let mut j0 = t.cols.0;
            while j0 < t.cols.1 {
                let c = (t.cols.1 - j0).min(NR);
                for (q, dst) in buf.chunks_exact_mut(t.k.max(1)).take(c).enumerate() {
                    widen_row(simd, &t.w[(j0 + q) * t.k..(j0 + q + 1) * t.k], dst);
                }
                crate::blocked::panels(
                    t.x,
                    t.k,
                    (&buf[..c * t.k], j0),
                    t.rows,
                    (j0, j0 + c),
                    (&mut *t.out, origin, t.ldo),
                    |xr, wr, m, j| micro(simd, xr, wr, m, j, fold),
                );
                j0 += c;
            }
            return;
        }
        crate::blocked::panels(
            t.x,
            t.k,
            (t.w, 0),
            t.rows,
            t.cols,
            (t.out, origin, t.ldo),
            |xr, wr, m, j| micro(simd, xr, wr, m, j, fold),
        )
    }
}

/// Rows of x above which e4m3 weight panels are widened once into f32 first.
const PACK_ROWS: usize = 2 * MR;

/// `dst = src` widened to f32, 16 at a time in registers.
#[inline(always)]
fn widen_row<W: Load16>(simd: V4, src: &[W], dst: &mut [f32]) {
    let mut s = src.chunks_exact(LANES);
    let mut d = dst.chunks_exact_mut(LANES);
    for (si, di) in (&mut s).zip(&mut d) {
        di.copy_from_slice(&cast::<f32x16, Lanes>(W::load16(simd, si)));
    }
    for (di, si) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *di = si.f();
    }
}

/// `blocked::tile` on the AVX-512 kernel: the same outputs at the same places.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile<W: Load16, O: OutElem, F: Fold>(
    simd: V4,
    x: &[f32],
    k: usize,
    w: &[W],
    rows: (usize, usize),
    cols: (usize, usize),
    fold: &F,
    out: &mut [O],
    ldo: usize,
) {
    let op = Tile {
        simd,
        x,
        k,
        w,
        rows,
        cols,
        fold,
        out,
        ldo,
    };
    Simd::vectorize(simd, op)
}
