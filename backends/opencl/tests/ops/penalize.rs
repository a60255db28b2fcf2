use concord_core::DType;
use concord_ops::{Penalize, Sample};

use crate::harness::{check, opencl, Data, Out, Rng};

#[test]
fn penalize_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(21);
    let (b, v, k) = (3usize, 300usize, 40usize);
    let mut logits = rng.vals(b * v, 6.0);
    logits[7] = 0.0;
    logits[8] = -0.0;
    logits[9] = f32::NAN;
    logits[10] = f32::NEG_INFINITY;
    // (id, output count, in prompt); ids ≥ V are padding; row 0 names ids 7..11 on purpose.
    let mut seen = Vec::with_capacity(b * k * 3);
    for row in 0..b {
        for j in 0..k {
            let id = match (row, j) {
                (0, j) if j < 4 => 7 + j as u32,
                (_, j) if j + 3 >= k => u32::MAX - j as u32,
                _ => rng.below(v) as u32,
            };
            let count = if rng.below(3) == 0 {
                0
            } else {
                rng.below(70) as u32
            };
            seen.extend([id, count, rng.below(2) as u32]);
        }
    }
    for (repetition, frequency, presence) in [
        (1.0, 0.0, 0.0),
        (1.3, 0.0, 0.0),
        (0.7, 0.4, -1.1),
        (2.0, -2.0, 2.0),
        (1.1, 0.123, 0.77),
    ] {
        check(
            &format!("penalize r={repetition} f={frequency} p={presence}"),
            Penalize {
                repetition,
                frequency,
                presence,
            },
            &[Data::f32(&[b, v], &logits), Data::u32(&[b, k, 3], &seen)],
            &[Out::new(DType::F32, &[b, v])],
        );
    }
}

#[test]
fn min_p_sampling_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(22);
    for (b, v, valid) in [(4usize, 50usize, 45usize), (2, 3000, 2999)] {
        let mut logits = rng.vals(b * v, 6.0);
        logits[v..v + v / 3].fill(2.5);
        logits[v + v / 3] = f32::NAN;
        logits[v + v / 3 + 1] = f32::NEG_INFINITY;
        let uniform: Vec<f32> = (0..b)
            .map(|i| if i == 0 { 0.99999994 } else { rng.unit() })
            .collect();
        for (temperature, top_k, top_p, min_p) in [
            (1.0, 0, 1.0, 0.05),
            (0.7, 0, 0.9, 0.1),
            (1.3, 10, 1.0, 0.01),
            (2.0, 0, 1.0, 1.0),
            (0.0, 0, 1.0, 0.5),
        ] {
            check(
                &format!("sample b={b} v={v} T={temperature} k={top_k} p={top_p} min_p={min_p}"),
                Sample {
                    temperature,
                    top_k,
                    top_p,
                    min_p,
                    valid_vocab: valid,
                },
                &[Data::f32(&[b, v], &logits), Data::f32(&[b], &uniform)],
                &[Out::new(DType::U32, &[b])],
            );
        }
    }
}
