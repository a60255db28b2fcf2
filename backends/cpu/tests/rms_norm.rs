//! rms_norm: f64 reference, hand-derived values, and the two BF16 rounding points.
mod common;

use common::*;
use concord_core::convert::round_to_bf16;
use concord_core::numerics::reduce::canonical_sum;
use concord_core::DType;
use concord_ops::RmsNorm;

#[test]
fn rms_norm_hand_derived() {
    let be = backend();
    let op = RmsNorm {
        eps: 0.0,
        out: DType::BF16,
    };
    let y = run1(
        &be,
        op.clone(),
        &[&f32s(&be, &[1, 4], &[1.0; 4]), &f32s(&be, &[4], &[2.0; 4])],
    );
    assert_eq!(y.f32(), vec![2.0; 4]);
    // x = [3, 4]: mean 12.5, r = 0.28284271…; y = [0.848528…, 1.131370…] → BF16
    // [217·2^-8, 145·2^-7] = [0.84765625, 1.1328125]; × w = [1, 2] → [0.84765625, 2.265625].
    let y = run1(
        &be,
        op,
        &[
            &f32s(&be, &[1, 2], &[3.0, 4.0]),
            &f32s(&be, &[2], &[1.0, 2.0]),
        ],
    );
    assert_eq!(y.f32(), vec![0.84765625, 2.265625]);
}

#[test]
fn rms_norm_matches_f64_reference() {
    let be = backend();
    let mut rng = Rng::new(20);
    let (t, d, eps) = (5, 700, 1e-6f32);
    let x: Vec<f32> = rng.vec(t * d).iter().map(|v| v * 3.0).collect();
    let w = rng.vec(d);
    let y = run1(
        &be,
        RmsNorm {
            eps,
            out: DType::F32,
        },
        &[&f32s(&be, &[t, d], &x), &f32s(&be, &[d], &w)],
    );
    let mut want = Vec::new();
    for row in x.chunks(d) {
        let ms = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / d as f64;
        let r = 1.0 / (ms + eps as f64).sqrt();
        want.extend(row.iter().zip(&w).map(|(v, w)| *v as f64 * r * *w as f64));
    }
    assert_close(&y.f32(), &want, 1e-5, 1e-3, "rms_norm");
}

#[test]
fn rms_norm_rounding_points() {
    // BF16 out: y = A(x·r) is rounded before the weight multiplies it, and the product is
    // rounded again. Expected values follow the contract step by step.
    let be = backend();
    let mut rng = Rng::new(21);
    let (t, d, eps) = (8, 300, 1e-6f32);
    let x = rng.vec_bf16(t * d);
    let w: Vec<f32> = rng
        .vec_bf16(d)
        .iter()
        .map(|v| round_to_bf16(v * 4.0))
        .collect();
    let y = run1(
        &be,
        RmsNorm {
            eps,
            out: DType::BF16,
        },
        &[&bf16s(&be, &[t, d], &x), &bf16s(&be, &[d], &w)],
    )
    .f32();
    let mut differs_from_one_rounding = 0;
    for (i, row) in x.chunks(d).enumerate() {
        let ss = canonical_sum(d, |k| row[k] * row[k]);
        let r = 1.0 / (ss / d as f32 + eps).sqrt();
        for k in 0..d {
            let want = round_to_bf16(w[k] * round_to_bf16(row[k] * r));
            assert_eq!(y[i * d + k].to_bits(), want.to_bits(), "row {i} column {k}");
            if want != round_to_bf16(w[k] * (row[k] * r)) {
                differs_from_one_rounding += 1;
            }
        }
    }
    // The data set does exercise the intermediate rounding.
    assert!(differs_from_one_rounding > 0);
}
