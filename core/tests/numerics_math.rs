//! exp, sigmoid, SiLU, softmax and the RMSNorm root (docs/numerics.md §5).
//!
//! References are hand-derived values or f64 computations (libm's f64 exp is accurate to well
//! under one f64 ulp, i.e. ~2^-29 of an f32 ulp).

use concord_core::numerics::math::{
    exp, rsqrt_for_norm, sigmoid, silu, softmax_in_place, EXP_OVERFLOW_X, EXP_UNDERFLOW_X,
};

/// 2^k in f64 (exact).
fn pow2(k: i32) -> f64 {
    f64::powi(2.0, k)
}

/// Size of one f32 ulp at the magnitude of the (finite, non-negative) exact value `e`: the
/// spacing of the f32 binade that contains `e`, or 2^-149 below 2^-126.
fn f32_ulp_at(e: f64) -> f64 {
    if e < pow2(-126) {
        return pow2(-149);
    }
    let binade = ((e.to_bits() >> 52) as i32) - 1023; // ⌊log2 e⌋ for a normal f64
    pow2(binade - 23)
}

/// Error of `got` against the exact value `e`, in f32 ulps at `e`. An infinite result is
/// error 0 if `e` rounds to +∞ in f32, else infinite.
fn ulp_error(got: f32, e: f64) -> f64 {
    let rounded = e as f32; // Rust's f64 → f32 cast rounds to nearest even, overflow to ∞
    if got.is_infinite() || rounded.is_infinite() {
        return if got == rounded { 0.0 } else { f64::INFINITY };
    }
    (got as f64 - e).abs() / f32_ulp_at(e)
}

fn next_up(x: f32) -> f32 {
    match x.to_bits() {
        0x8000_0000 => f32::from_bits(1),
        b if x >= 0.0 => f32::from_bits(b + 1),
        b => f32::from_bits(b - 1),
    }
}

fn next_down(x: f32) -> f32 {
    -next_up(-x)
}

/// Maximum ulp error of `exp` over every `stride`-th f32 in [lo, hi] (both signs walked by
/// bit pattern), split over the available threads. Returns (max error, argmax, points, points
/// whose result is not the correctly rounded one).
fn exp_sweep(lo: f32, hi: f32, stride: u32) -> (f64, f32, u64, u64) {
    assert!(lo < 0.0 && hi > 0.0);
    // Ranges of bit patterns: negatives (−0 .. lo] and non-negatives [+0 .. hi].
    let ranges = [(0x8000_0000u32, lo.to_bits()), (0u32, hi.to_bits())];
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    let mut jobs = Vec::new();
    for (start, end) in ranges {
        let span = end - start;
        for t in 0..threads {
            let a = start + (span as u64 * t as u64 / threads as u64) as u32;
            let b = start + (span as u64 * (t as u64 + 1) / threads as u64) as u32;
            jobs.push((a, b, t + 1 == threads));
        }
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(a, b, last)| {
                s.spawn(move || {
                    let (mut worst, mut at, mut count, mut off) = (0.0f64, 0.0f32, 0u64, 0u64);
                    let mut bits = a;
                    let end = if last { b + 1 } else { b }; // the last chunk includes `end`
                    while bits < end {
                        let x = f32::from_bits(bits);
                        let (got, e) = (exp(x), (x as f64).exp());
                        let err = ulp_error(got, e);
                        off += (got != e as f32) as u64;
                        if err > worst {
                            worst = err;
                            at = x;
                        }
                        count += 1;
                        bits = match bits.checked_add(stride) {
                            Some(next) => next,
                            None => break,
                        };
                    }
                    (worst, at, count, off)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0.0, 0.0, 0, 0), |acc, r| {
                let (worst, at) = if r.0 > acc.0 {
                    (r.0, r.1)
                } else {
                    (acc.0, acc.1)
                };
                (worst, at, acc.2 + r.2, acc.3 + r.3)
            })
    })
}

/// Round an f64 to f32 and back. An f64 +, −, ×, ÷ or √ of f32 operands followed by this
/// equals the f32 operation (f64 has more than 2·24 + 2 bits, so double rounding is innocuous).
fn r32(x: f64) -> f64 {
    x as f32 as f64
}

/// The exp recipe of docs/numerics.md §5.1 transcribed independently: every f32 operation as
/// an f64 operation rounded by `r32`, and the scaling as the exact f64 product y·2^n rounded
/// once to f32. The constants are the document's literals, verbatim.
#[allow(clippy::excessive_precision, clippy::approx_constant)]
fn exp_recipe(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > 88.722_839_355_468_75 {
        return f32::INFINITY;
    }
    if x < -103.972_084_045_410_156_25 {
        return 0.0;
    }
    let x = x as f64;
    let log2e = 1.442_695_040_888_963_4_f64 as f32 as f64;
    let c1 = 0.693_359_375f64;
    let c2 = -2.121_944_40e-4_f32 as f64;
    let p: [f64; 6] = [
        1.987_569_15e-4,
        1.398_199_950_7e-3,
        8.333_451_907_3e-3,
        4.166_579_589_4e-2,
        1.666_666_545_9e-1,
        5.000_000_120_1e-1,
    ]
    .map(|c: f64| c as f32 as f64);
    let n = r32(r32(x * log2e) + 0.5).floor();
    let rr = r32(r32(x - r32(n * c1)) - r32(n * c2));
    let mut q = p[0];
    for c in &p[1..] {
        q = r32(r32(q * rr) + c);
    }
    let y = r32(r32(r32(q * r32(rr * rr)) + rr) + 1.0);
    (y * pow2(n as i32)) as f32
}

#[test]
fn exp_matches_recipe_bit_for_bit() {
    // Every 97th f32 in [−104, 89] and every f32 within 2^16 ulps of the range ends, of 0, and
    // of the points where n changes near ±1 and at the normal/subnormal boundary.
    let mut checked = 0u64;
    let mut check = |x: f32| {
        let (got, want) = (exp(x), exp_recipe(x));
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "exp({x:e}) = {got:e}, recipe {want:e}"
        );
        checked += 1;
    };
    for (lo, hi) in [
        (0x8000_0000u32, (-104.0f32).to_bits()),
        (0, 89.0f32.to_bits()),
    ] {
        let mut b = lo;
        while b <= hi {
            check(f32::from_bits(b));
            b += 97;
        }
    }
    for centre in [
        EXP_OVERFLOW_X,
        EXP_UNDERFLOW_X,
        0.0,
        0.346_573_6,
        -0.346_573_6,
        -87.336_54,
        -87.683_2,
        -88.029_69,
        88.376_2,
    ] {
        let mut x = centre;
        for _ in 0..65536 {
            x = next_down(x);
        }
        for _ in 0..131072 {
            check(x);
            x = next_up(x);
        }
    }
    assert!(checked > 20_000_000);
}

#[test]
fn exp_special_values() {
    assert!(exp(f32::NAN).is_nan());
    assert!(exp(-f32::NAN).is_nan());
    assert_eq!(exp(f32::INFINITY), f32::INFINITY);
    assert_eq!(exp(f32::NEG_INFINITY).to_bits(), 0, "+0.0, not −0.0");
    assert_eq!(exp(0.0), 1.0);
    assert_eq!(exp(-0.0), 1.0);
    // |x| below 2^-25: e^x is within half an ulp of 1 on either side, so it rounds to 1.
    for x in [
        1e-10f32,
        -1e-10,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::MIN_POSITIVE,
    ] {
        assert_eq!(exp(x), 1.0, "exp({x:e})");
    }
    // Overflow: ln(f32::MAX + ulp/2) = 88.7228391… < EXP_OVERFLOW_X, so the threshold itself
    // and everything above give +∞.
    for x in [
        EXP_OVERFLOW_X,
        next_up(EXP_OVERFLOW_X),
        89.0,
        1000.0,
        f32::MAX,
    ] {
        assert_eq!(exp(x), f32::INFINITY, "exp({x:e})");
    }
    // The largest finite result: x = 0x42B17217 = 88.72283172607421875, e^x ≈ 0.99999267 · MAX.
    assert!(exp(next_down(EXP_OVERFLOW_X)).is_finite());
    // Underflow: e^x < 2^-150 (half the smallest subnormal) rounds to +0.0.
    for x in [
        EXP_UNDERFLOW_X,
        next_down(EXP_UNDERFLOW_X),
        -104.0,
        -1000.0,
        f32::MIN,
    ] {
        assert_eq!(exp(x).to_bits(), 0, "exp({x:e})");
    }
    // Just above: x = −103.9720764… has e^x = 2^-150 · e^(6.7e-7) > 2^-150 → 2^-149.
    assert_eq!(exp(next_up(EXP_UNDERFLOW_X)).to_bits(), 1);
}

#[test]
fn exp_thresholds_agree_with_f64() {
    // 4096 f32 on each side of both thresholds: +∞/+0 exactly where the correctly rounded
    // result is +∞/+0, and within 2 ulp elsewhere.
    for t in [EXP_OVERFLOW_X, EXP_UNDERFLOW_X] {
        let mut x = t;
        for _ in 0..4096 {
            x = next_down(x);
        }
        for _ in 0..8192 {
            let e = (x as f64).exp();
            let got = exp(x);
            assert_eq!(
                got.is_infinite(),
                (e as f32).is_infinite(),
                "exp({x:e}) = {got:e}"
            );
            assert_eq!(got == 0.0, (e as f32) == 0.0, "exp({x:e}) = {got:e}");
            assert!(
                ulp_error(got, e) <= 2.0,
                "exp({x:e}) = {got:e}, exact {e:e}"
            );
            x = next_up(x);
        }
    }
}

#[test]
fn exp_accuracy_within_2_ulp() {
    // Every 61st f32 in [−104, 89] (≈ 37 million points). With CONCORD_EXHAUSTIVE=1 every one
    // of the 2.24e9 f32 there (about a minute on two cores, optimised): the figure reported in
    // docs/numerics.md §5.1 comes from that run.
    let stride = if std::env::var_os("CONCORD_EXHAUSTIVE").is_some() {
        1
    } else {
        61
    };
    let (worst, at, count, off) = exp_sweep(-104.0, 89.0, stride);
    eprintln!(
        "exp: max error {worst:.4} ulp at x = {at:e} ({:#010x}) over {count} points, {off} not correctly rounded",
        at.to_bits()
    );
    assert!(worst <= 2.0, "max error {worst} ulp at x = {at:e}");
}

#[test]
fn exp_subnormal_results() {
    // e^-100 = 26.5470… · 2^-149: the result is the subnormal 27 · 2^-149 (bits 27), not 0.
    let ratio = (-100.0f64 + 149.0 * std::f64::consts::LN_2).exp();
    assert!((ratio - 26.547).abs() < 1e-3);
    assert_eq!(exp(-100.0).to_bits(), 27);
    // e^-90 = 8.19e-40 lies in the subnormal range (< 2^-126 = 1.18e-38).
    let e = (-90.0f64).exp();
    assert_eq!(exp(-90.0).to_bits(), (e as f32).to_bits());
    assert!(exp(-90.0) < f32::MIN_POSITIVE && exp(-90.0) > 0.0);
    // Every f32 x whose exact e^x is below 2^-126: the result is e^x rounded once. With the
    // polynomial's relative error δ ≤ 2^-22 the result may differ from the correctly rounded
    // one only when e^x lies within δ·e^x of a rounding midpoint; check the bound always and
    // exact agreement elsewhere.
    let mut x = next_up(EXP_UNDERFLOW_X);
    let mut checked = 0;
    while (x as f64).exp() < pow2(-126) {
        let e = (x as f64).exp();
        let got = exp(x) as f64;
        let sub = pow2(-149);
        assert!(
            (got - e).abs() <= 0.5 * sub + e * pow2(-22),
            "exp({x:e}) = {got:e}, exact {e:e}"
        );
        let frac = (e / sub).fract();
        if (frac - 0.5).abs() > e * pow2(-22) / sub {
            assert_eq!(
                exp(x).to_bits(),
                (e as f32).to_bits(),
                "exp({x:e}) not rounded once"
            );
        }
        checked += 1;
        x = next_up(x);
    }
    assert!(checked > 2_000_000, "{checked}");
}

#[test]
fn sigmoid_saturates() {
    // e^-17 = 4.14e-8 < 2^-24 = 5.96e-8 (half an ulp above 1), so 1 + e^-17 rounds to 1.
    for x in [17.0f32, 20.0, 88.0, 89.0, 1e30, f32::INFINITY] {
        assert_eq!(sigmoid(x), 1.0, "sigmoid({x})");
    }
    // exp(−x) = +∞ for −x > EXP_OVERFLOW_X: 1/(1 + ∞) = +0.0.
    for x in [-89.0f32, -1000.0, f32::NEG_INFINITY] {
        assert_eq!(sigmoid(x).to_bits(), 0, "sigmoid({x})");
    }
    assert_eq!(sigmoid(0.0), 0.5);
    assert!(sigmoid(f32::NAN).is_nan());
    // Against f64 in between (exp ≤ 2 ulp, then one add and one division).
    let mut x = -87.0f32;
    while x < 20.0 {
        let want = 1.0 / (1.0 + (-(x as f64)).exp());
        assert!(
            ulp_error(sigmoid(x), want) <= 4.0,
            "sigmoid({x}) = {} vs {want:e}",
            sigmoid(x)
        );
        x += 0.013;
    }
}

#[test]
fn silu_negative_large() {
    // exp(−x) = +∞ → x/∞ = −0.0.
    for x in [-89.0f32, -100.0, -1e30, f32::MIN] {
        assert_eq!(silu(x).to_bits(), 0x8000_0000, "silu({x})");
    }
    // −∞/∞ is NaN (as in PyTorch's x / (1 + exp(−x))); +∞/1 = +∞.
    assert!(silu(f32::NEG_INFINITY).is_nan());
    assert_eq!(silu(f32::INFINITY), f32::INFINITY);
    assert_eq!(silu(0.0).to_bits(), 0);
    assert_eq!(silu(-0.0).to_bits(), 0x8000_0000);
    // Large x: 1 + e^-x rounds to 1, so silu(x) = x exactly.
    assert_eq!(silu(20.0), 20.0);
    // Deep negative but finite: −80·e^-80 ≈ −1.44e-33.
    for x in [-80.0f32, -50.0, -20.0, -5.0, -1.0, 1.0, 3.5] {
        let want = x as f64 / (1.0 + (-(x as f64)).exp());
        assert!(
            ulp_error(silu(x).abs(), want.abs()) <= 4.0,
            "silu({x}) vs {want:e}"
        );
        assert_eq!(silu(x).is_sign_negative(), x < 0.0);
    }
}

#[test]
fn softmax_all_masked_gives_zero() {
    let mut x = [f32::NEG_INFINITY; 7];
    softmax_in_place(&mut x);
    assert!(x.iter().all(|v| v.to_bits() == 0), "{x:?}");
    let mut empty: [f32; 0] = [];
    softmax_in_place(&mut empty);
}

#[test]
fn softmax_sums_to_one() {
    // Hand cases: exp(0) = 1 exactly, so equal logits give 1/n exactly (n a power of two);
    // a masked entry gives exp(−∞) = +0.
    let mut x = [0.0f32, 0.0];
    softmax_in_place(&mut x);
    assert_eq!(x, [0.5, 0.5]);
    let mut x = [3.0f32; 4];
    softmax_in_place(&mut x);
    assert_eq!(x, [0.25; 4]);
    let mut x = [0.0f32, f32::NEG_INFINITY, 0.0];
    softmax_in_place(&mut x);
    assert_eq!(x.map(f32::to_bits), [0.5f32.to_bits(), 0, 0.5f32.to_bits()]);
    let mut x = [5.0f32, f32::NEG_INFINITY];
    softmax_in_place(&mut x);
    assert_eq!(x, [1.0, 0.0]);
    // Pseudo-random rows of many lengths against an f64 softmax.
    let mut state = 7u64;
    for n in [1usize, 2, 3, 15, 16, 17, 127, 128, 129, 300, 1000, 4097] {
        let row: Vec<f32> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 40.0
            })
            .collect();
        let mut p = row.clone();
        softmax_in_place(&mut p);
        let m = row
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, |a, v| a.max(v as f64));
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let total: f64 = p.iter().map(|&v| v as f64).sum();
        assert!((total - 1.0).abs() <= 1e-5, "n={n}: Σp = {total}");
        for (i, (&got, &ei)) in p.iter().zip(&e).enumerate() {
            let want = ei / s;
            assert!(
                (got as f64 - want).abs() <= 1e-5 * want + 1e-30,
                "n={n} i={i}: {got:e} vs {want:e}"
            );
        }
    }
}

#[test]
fn softmax_propagates_nan() {
    let mut x = [1.0f32, f32::NAN, 2.0];
    softmax_in_place(&mut x);
    assert!(x.iter().all(|v| v.is_nan()));
    // +∞ − +∞ is NaN, so a +∞ logit poisons the row too.
    let mut x = [1.0f32, f32::INFINITY];
    softmax_in_place(&mut x);
    assert!(x.iter().all(|v| v.is_nan()));
}

#[test]
fn rsqrt_for_norm_is_one_over_rounded_sqrt() {
    assert_eq!(rsqrt_for_norm(3.0, 1.0), 0.5);
    assert_eq!(rsqrt_for_norm(0.0, 0.25), 2.0);
    // 1/3 and 1/√2: f64 square roots and quotients rounded to f32 equal the f32 operations
    // (double rounding is innocuous for √ and ÷ from f64 to f32).
    assert_eq!(rsqrt_for_norm(8.0, 1.0), (1.0f64 / 3.0) as f32);
    let s = 2.0f64.sqrt() as f32;
    assert_eq!(rsqrt_for_norm(2.0, 0.0), (1.0 / s as f64) as f32);
    // eps = 1e-6 on an all-zero row: 1/sqrt(f32(1e-6)).
    let eps = 1e-6f32;
    let s = (eps as f64).sqrt() as f32;
    assert_eq!(rsqrt_for_norm(0.0, eps), (1.0 / s as f64) as f32);
}
