use concord_core::DType;
use concord_ops::Sample;

use crate::harness::{check, opencl, Data, Out, Rng};

#[test]
fn sample_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(20);
    // (temperature, top_k, top_p)
    let settings = [
        (0.0, 0, 1.0),
        (0.7, 0, 1.0),
        (1.0, 5, 0.9),
        (0.3, 1, 1.0),
        (1.3, 40, 0.5),
        (0.9, 0, 0.95),
        (2.0, 100000, 0.999),
    ];
    for (b, v, valid) in [(4, 50, 45), (1, 3000, 2999), (3, 7, 7)] {
        let mut logits = rng.vals(b * v, 6.0);
        // Row 1: ties, −∞ and NaN logits; row 2: every logit NaN.
        if b > 1 {
            for j in 0..v / 3 {
                logits[v + j] = 2.5;
            }
            logits[v + v / 3] = f32::NEG_INFINITY;
            logits[v + v / 3 + 1] = f32::NAN;
        }
        if b > 2 {
            logits[2 * v..3 * v].fill(f32::NAN);
        }
        let uniform: Vec<f32> = (0..b)
            .map(|i| if i == 0 { 0.9999999 } else { rng.unit() })
            .collect();
        for (temperature, top_k, top_p) in settings {
            check(
                &format!("sample b={b} v={v} valid={valid} T={temperature} k={top_k} p={top_p}"),
                Sample {
                    temperature,
                    top_k,
                    top_p,
                    min_p: 0.0,
                    valid_vocab: valid,
                },
                &[Data::f32(&[b, v], &logits), Data::f32(&[b], &uniform)],
                &[Out::new(DType::U32, &[b])],
            );
        }
    }
}

#[test]
fn tiny_temperatures_and_huge_logits_match_cpu() {
    if opencl().is_none() {
        return;
    }
    let v = 6;
    // Rows: ties; all negative; ±1e30 with a tie; a difference that overflows; +∞ at the top;
    // ordinary values.
    let logits: Vec<f32> = [
        [3.0, 7.0, 7.0, -1.0, 0.0, 6.5],
        [-5.0, -3.0, -3.0, -4.0, -3.5, -9.0],
        [1e30, -1e30, 1e30, 0.0, 5.0, -5.0],
        [3.0e38, -3.0e38, 3.0e38, 0.0, 1.0, 2.0],
        [0.0, f32::INFINITY, 5.0, f32::INFINITY, f32::NAN, 1.0],
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    ]
    .concat();
    let b = logits.len() / v;
    let uniform = [0.1, 0.5, 0.75, 0.9, 0.3, 0.99999994];
    for temperature in [1e-45, 1e-40, 1e-38, 1e-37, 1e-30, 1e-6, 1e-5, 0.5, 1.0] {
        for top_k in [0, 2] {
            check(
                &format!("sample tiny T={temperature:e} k={top_k}"),
                Sample {
                    temperature,
                    top_k,
                    top_p: 1.0,
                    min_p: 0.0,
                    valid_vocab: v,
                },
                &[Data::f32(&[b, v], &logits), Data::f32(&[b], &uniform)],
                &[Out::new(DType::U32, &[b])],
            );
        }
    }
}
