//! matmul: canonical dot, F32/BF16 weights, rounding of the output.
mod common;

use common::*;
use concord_core::convert::{f32_to_bf16, round_to_bf16};
use concord_core::numerics::reduce::canonical_sum;
use concord_core::DType;
use concord_ops::Matmul;

#[test]
fn matmul_small_hand_derived() {
    let be = backend();
    let x = f32s(&be, &[1, 3], &[1.0, 2.0, 3.0]);
    let w = f32s(&be, &[2, 3], &[4.0, 5.0, 6.0, -1.0, 0.0, 1.0]);
    let y = run1(&be, Matmul { out: DType::F32 }, &[&x, &w]);
    assert_eq!(y.f32(), vec![32.0, 2.0]);
}

#[test]
fn matmul_uses_canonical_dot() {
    let be = backend();
    let mut rng = Rng::new(10);
    let (m, k, n) = (3, 300, 37);
    // Values over many magnitudes so any other summation order would show in the bits.
    let x: Vec<f32> = (0..m * k)
        .map(|_| rng.uniform(-1.0, 1.0) * 2f32.powi(rng.below(24) as i32 - 12))
        .collect();
    let w = rng.vec(n * k);
    let wb = rng.vec_bf16(n * k);
    for (wdt, wv) in [(DType::F32, &w), (DType::BF16, &wb)] {
        let xt = f32s(&be, &[m, k], &x);
        let wt = act(&be, wdt, &[n, k], wv);
        let y = run1(&be, Matmul { out: DType::F32 }, &[&xt, &wt]);
        let got = y.f32();
        for i in 0..m {
            for j in 0..n {
                let want = canonical_sum(k, |q| x[i * k + q] * wv[j * k + q]);
                assert_eq!(
                    got[i * n + j].to_bits(),
                    want.to_bits(),
                    "{wdt} weights, [{i},{j}]"
                );
            }
        }
    }
}

#[test]
fn matmul_matches_f64_reference() {
    let be = backend();
    let mut rng = Rng::new(11);
    let (m, k, n) = (4, 1000, 50);
    let x = rng.vec(m * k);
    let w = rng.vec(n * k);
    let y = run1(
        &be,
        Matmul { out: DType::F32 },
        &[&f32s(&be, &[m, k], &x), &f32s(&be, &[n, k], &w)],
    )
    .f32();
    for i in 0..m {
        for j in 0..n {
            let (xr, wr) = (&x[i * k..(i + 1) * k], &w[j * k..(j + 1) * k]);
            let want = dot64(xr, wr);
            let scale: f64 = xr
                .iter()
                .zip(wr)
                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                .sum();
            let err = (y[i * n + j] as f64 - want).abs();
            assert!(
                err <= 1e-5 * scale,
                "[{i},{j}] got {} want {want}",
                y[i * n + j]
            );
        }
    }
}

#[test]
fn matmul_bf16_output_rounds_to_nearest_even() {
    let be = backend();
    // Each row of w picks x0 + x1·c; with x = [1, 2^-9] the sums below are exact in f32.
    let e = 2f32.powi(-9);
    let x = f32s(&be, &[1, 2], &[1.0, e]);
    let w = f32s(&be, &[4, 2], &[1.0, 1.0, 1.0, 2.0, 1.0, 3.0, 1.0, 6.0]);
    let y = run1(&be, Matmul { out: DType::BF16 }, &[&x, &w]).f32();
    // BF16 spacing at 1 is 2^-7 = 4·2^-9.
    assert_eq!(y[0], 1.0, "1 + 2^-9 rounds down");
    assert_eq!(y[1], 1.0, "1 + 2^-8 is a tie, to even (1.0)");
    assert_eq!(y[2], 1.0078125, "1 + 3·2^-9 rounds up");
    assert_eq!(
        y[3], 1.015625,
        "1 + 6·2^-9 = 1 + 3·2^-8 is a tie, to even (1 + 2^-6)"
    );
}

#[test]
fn matmul_bf16_output_is_rounded_canonical_value() {
    let be = backend();
    let mut rng = Rng::new(12);
    let (m, k, n) = (2, 513, 19);
    let x = rng.vec_bf16(m * k);
    let w = rng.vec_bf16(n * k);
    let xt = bf16s(&be, &[m, k], &x);
    let wt = bf16s(&be, &[n, k], &w);
    let y = run1(&be, Matmul { out: DType::BF16 }, &[&xt, &wt]);
    let got: Vec<u16> = y
        .bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    for i in 0..m {
        for j in 0..n {
            let v = canonical_sum(k, |q| x[i * k + q] * w[j * k + q]);
            assert_eq!(got[i * n + j], f32_to_bf16(v));
            assert_eq!(round_to_bf16(v), y.f32()[i * n + j]);
        }
    }
}
