//! `base ** exponents` for a float32 tensor exactly as PyTorch's CPU kernel computes it, so that
//! [`crate::ModelConfig::rope_inv_freq`] reproduces Hugging Face's `inv_freq` bit for bit.
//!
//! torch's `pow(Scalar, Tensor)` on a float32 CPU tensor runs `cpu_kernel_vec`: full blocks of
//! `2 × lanes` elements go through SLEEF's `Sleef_powf*_u10` (FMA build), the remaining tail
//! through `std::pow(float, float)` (glibc `powf`). With AVX-512 (16 lanes) the block is 32
//! elements, so `qk_rope_head_dim = 64` (32 frequencies) is computed entirely by SLEEF. The two
//! differ in about 1.5 % of (base, exponent) pairs by one ulp, hence this port.
//!
//! The SLEEF part is a transcription of `xpowf` / `logkf` / `expkf` and the double-float helpers
//! of SLEEF 3.x (`src/libm/sleefsimdsp.c`, `src/common/df.h`, FMA variants; Boost Software
//! License 1.0, © Naoki Shibata and contributors), restricted to finite positive bases. The
//! constants are SLEEF's decimal literals verbatim (each rounds to the intended f32).
#![allow(clippy::excessive_precision)]

/// Elements per SLEEF block in torch's AVX-512 vectorized loop (2 × 16 lanes).
const TORCH_VEC_BLOCK: usize = 32;

/// `[base^e for e in exps]` as torch computes `base ** tensor` (float32, AVX-512 CPU kernel).
pub(crate) fn torch_pow_scalar_base(base: f32, exps: &[f32]) -> Vec<f32> {
    let vec_len = exps.len() / TORCH_VEC_BLOCK * TORCH_VEC_BLOCK;
    exps.iter()
        .enumerate()
        .map(|(i, &e)| {
            if i < vec_len {
                sleef_powf_u10(base, e)
            } else {
                base.powf(e)
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
struct F2 {
    x: f32,
    y: f32,
}

const fn f2(x: f32, y: f32) -> F2 {
    F2 { x, y }
}

#[inline]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}
/// `a·b − c`, one rounding (`vfmapn`).
#[inline]
fn fmapn(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, -c)
}
/// `−a·b + c`, one rounding (`vfmanp`).
#[inline]
fn fmanp(a: f32, b: f32, c: f32) -> f32 {
    (-a).mul_add(b, c)
}

fn df_normalize(t: F2) -> F2 {
    let s = t.x + t.y;
    f2(s, (t.x - s) + t.y)
}
fn df_scale(d: F2, s: f32) -> F2 {
    f2(d.x * s, d.y * s)
}
fn df_add2_f_f(x: f32, y: f32) -> F2 {
    let s = x + y;
    let v = s - x;
    f2(s, (x - (s - v)) + (y - v))
}
fn df_add_f_f2(x: f32, y: F2) -> F2 {
    let s = x + y.x;
    f2(s, ((x - s) + y.x) + y.y)
}
fn df_add_f2_f2(x: F2, y: F2) -> F2 {
    let s = x.x + y.x;
    f2(s, (((x.x - s) + y.x) + x.y) + y.y)
}
fn df_add2_f2_f(x: F2, y: f32) -> F2 {
    let s = x.x + y;
    let v = s - x.x;
    let t = (x.x - (s - v)) + (y - v);
    f2(s, t + x.y)
}
fn df_add2_f2_f2(x: F2, y: F2) -> F2 {
    let s = x.x + y.x;
    let v = s - x.x;
    let t = (x.x - (s - v)) + (y.x - v);
    f2(s, t + (x.y + y.y))
}
fn df_div(n: F2, d: F2) -> F2 {
    let t = 1.0f32 / d.x;
    let s = n.x * t;
    let u = fmapn(t, n.x, s);
    let v = fmanp(d.y, t, fmanp(d.x, t, 1.0));
    f2(s, fma(s, v, fma(n.y, t, u)))
}
fn df_mul_f2_f(x: F2, y: f32) -> F2 {
    let s = x.x * y;
    f2(s, fma(x.y, y, fmapn(x.x, y, s)))
}
fn df_mul_f2_f2(x: F2, y: F2) -> F2 {
    let s = x.x * y.x;
    f2(s, fma(x.x, y.y, fma(x.y, y.x, fmapn(x.x, y.x, s))))
}
fn df_squ(x: F2) -> F2 {
    let s = x.x * x.x;
    f2(s, fma(x.x + x.x, x.y, fmapn(x.x, x.x, s)))
}

/// `floor(log2 |d|)` of a finite non-zero normal f32 (`getexp`).
fn getexp(d: f32) -> i32 {
    ((d.to_bits() >> 23) & 0xff) as i32 - 127
}

/// `d · 2^-k` with `k` chosen so that the result lies in `[0.75, 1.5)` (`getmant`, p75_1p5), for
/// a positive normal `d`.
fn getmant_p75_1p5(d: f32) -> f32 {
    let b = d.to_bits();
    let mant = f32::from_bits((b & 0x007f_ffff) | 0x3f80_0000); // [1, 2)
    if mant >= 1.5 {
        mant * 0.5
    } else {
        mant
    }
}

/// SLEEF `vldexp_vf_vf_vi2`.
fn ldexp(x: f32, q: i32) -> f32 {
    let mut m = q >> 31;
    m = (((m + q) >> 6) - m) << 4;
    let q = q - (m << 2);
    m += 0x7f;
    m = if m > 0 { m } else { 0 };
    m = if m > 0xff { 0xff } else { m };
    let u = f32::from_bits((m as u32) << 23);
    let x = x * u * u * u * u;
    let u = f32::from_bits(((q + 0x7f) as u32) << 23);
    x * u
}

/// SLEEF `logkf` (AVX-512 form: `getexp`/`getmant`), a double-float `ln d` for positive normal d.
fn logkf(d: f32) -> F2 {
    let e = getexp(d * (1.0f32 / 0.75f32)) as f32;
    let m = getmant_p75_1p5(d);
    let x = df_div(df_add2_f_f(-1.0, m), df_add2_f_f(1.0, m));
    let x2 = df_squ(x);
    let mut t = 0.240_320_354_700_088_500_976_562_f32;
    t = fma(t, x2.x, 0.285_112_679_004_669_189_453_125_f32);
    t = fma(t, x2.x, 0.400_007_992_982_864_379_882_812_f32);
    let c = f2(
        0.666_666_626_930_236_816_406_25_f32,
        3.691_838_612_596_143_320_843_11e-9_f32,
    );
    let mut s = df_mul_f2_f(
        f2(
            0.693_147_182_464_599_609_38_f32,
            -1.904_654_323_148_236_017e-9_f32,
        ),
        e,
    );
    s = df_add_f2_f2(s, df_scale(x, 2.0));
    df_add_f2_f2(
        s,
        df_mul_f2_f2(df_mul_f2_f2(x2, x), df_add2_f2_f2(df_mul_f2_f(x2, t), c)),
    )
}

const L2U: f32 = 0.693_145_751_953_125_f32;
const L2L: f32 = 1.428_606_765_330_187_045e-6_f32;
/// SLEEF `R_LN2f` (1/ln 2, correctly rounded to f32 like `LOG2_E`).
const R_LN2: f32 = std::f32::consts::LOG2_E;

/// SLEEF `expkf`: `e^(d.x + d.y)` rounded to f32.
fn expkf(d: F2) -> f32 {
    let u = (d.x + d.y) * R_LN2;
    let q = u.round_ties_even() as i32;
    let qf = q as f32;
    let mut s = df_add2_f2_f(d, qf * -L2U);
    s = df_add2_f2_f(s, qf * -L2L);
    s = df_normalize(s);
    let mut u = 0.001_363_246_468_827_128_410_339_36_f32;
    u = fma(u, s.x, 0.008_365_969_173_610_210_418_701_17_f32);
    u = fma(u, s.x, 0.041_671_082_377_433_776_855_468_8_f32);
    u = fma(u, s.x, 0.166_665_524_244_308_471_679_688_f32);
    u = fma(u, s.x, 0.499_999_850_988_388_061_523_438_f32);
    let mut t = df_add_f2_f2(s, df_mul_f2_f(df_squ(s), u));
    t = df_add_f_f2(1.0, t);
    let r = ldexp(t.x + t.y, q);
    if d.x < -104.0 {
        0.0
    } else {
        r
    }
}

/// SLEEF `xpowf` (u10) for a finite positive normal `x` and finite `y`; other inputs fall back
/// to `f32::powf` (they never occur for RoPE frequencies).
pub(crate) fn sleef_powf_u10(x: f32, y: f32) -> f32 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if !(x.is_normal() && x > 0.0 && y.is_finite()) {
        return x.powf(y);
    }
    let r = expkf(df_mul_f2_f(logkf(x), y));
    if r.is_nan() {
        f32::INFINITY
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_torch_on_known_points() {
        // torch 2.15 AVX-512: 50000 ** (28/48) in a 32-element tensor is 0x4409b907, while
        // glibc powf (the scalar tail) gives 0x4409b908.
        let e = 28.0f32 / 48.0;
        assert_eq!(sleef_powf_u10(50000.0, e).to_bits(), 0x4409_b907);
        // 1e6 ** (74/128): torch 0x4537eba2 (correctly rounded would be 0x4537eba3).
        assert_eq!(sleef_powf_u10(1.0e6, 74.0 / 128.0).to_bits(), 0x4537_eba2);
    }

    #[test]
    fn close_to_exact() {
        for &b in &[2.0f32, 10.0, 10000.0, 1.0e6, 0.3] {
            for k in 0..64 {
                let e = k as f32 / 64.0;
                let got = sleef_powf_u10(b, e) as f64;
                let want = (b as f64).powf(e as f64);
                assert!(
                    ((got - want) / want).abs() < 2.0e-7,
                    "{b}^{e}: {got} vs {want}"
                );
            }
        }
    }
}
