//! rope: interleaved pairs, rounding once per output, table rows by position.
mod common;

use common::*;
use concord_core::convert::round_to_bf16;
use concord_core::DType;
use concord_ops::Rope;

#[test]
fn rope_hand_derived_pairs() {
    let be = backend();
    // One token, one head, width 6, rotating columns 2..6 (two pairs) at table row 1.
    let x = f32s(&be, &[1, 1, 6], &[9.0, 9.0, 1.0, 0.0, 1.0, 2.0]);
    let cos = f32s(&be, &[2, 2], &[0.0, 0.0, 0.6, 0.5]);
    let sin = f32s(&be, &[2, 2], &[0.0, 0.0, 0.8, 0.25]);
    let pos = u32s(&be, &[1], &[1]);
    let y = run1(
        &be,
        Rope {
            offset: 2,
            dim: 4,
            out: DType::F32,
        },
        &[&x, &cos, &sin, &pos],
    );
    // Pair 0 = (1, 0) → (c, s) = (0.6, 0.8); pair 1 = (1, 2) with c = 0.5, s = 0.25 →
    // (0.5 − 0.5, 0.25 + 1) = (0, 1.25).
    assert_eq!(y.f32(), vec![0.6, 0.8, 0.0, 1.25]);
}

#[test]
fn rope_rounding() {
    let be = backend();
    let mut rng = Rng::new(40);
    let (t, h, w, off, dim, rows) = (3, 4, 192, 128, 64, 50);
    let x = rng.vec_bf16(t * h * w);
    let inv: Vec<f32> = (0..dim / 2)
        .map(|i| 10000f32.powf(-2.0 * i as f32 / dim as f32))
        .collect();
    let mut cos = Vec::new();
    let mut sin = Vec::new();
    for p in 0..rows {
        for f in &inv {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    let positions = [0u32, 17, 49];
    let ins = [
        bf16s(&be, &[t, h, w], &x),
        f32s(&be, &[rows, dim / 2], &cos),
        f32s(&be, &[rows, dim / 2], &sin),
        u32s(&be, &[t], &positions),
    ];
    let refs: Vec<&T> = ins.iter().collect();
    let y16 = run1(
        &be,
        Rope {
            offset: off,
            dim,
            out: DType::BF16,
        },
        &refs,
    )
    .f32();
    let y32 = run1(
        &be,
        Rope {
            offset: off,
            dim,
            out: DType::F32,
        },
        &refs,
    )
    .f32();
    let mut checked = 0;
    for ti in 0..t {
        let p = positions[ti] as usize;
        for hi in 0..h {
            let r = &x[(ti * h + hi) * w + off..(ti * h + hi) * w + off + dim];
            for i in 0..dim / 2 {
                let (c, s) = (cos[p * dim / 2 + i], sin[p * dim / 2 + i]);
                let (x0, x1) = (r[2 * i], r[2 * i + 1]);
                // The contract: rounded f32 products, one add, one rounding to A.
                let k = ((ti * h + hi) * dim) + 2 * i;
                assert_eq!(y32[k].to_bits(), (x0 * c - x1 * s).to_bits());
                assert_eq!(y32[k + 1].to_bits(), (x0 * s + x1 * c).to_bits());
                assert_eq!(y16[k].to_bits(), round_to_bf16(x0 * c - x1 * s).to_bits());
                assert_eq!(
                    y16[k + 1].to_bits(),
                    round_to_bf16(x0 * s + x1 * c).to_bits()
                );
                // And the f64 rotation of the same inputs, within the rounding of two
                // products and one add (relative to the terms' size), plus BF16's half ulp.
                let (x0, x1, c, s) = (x0 as f64, x1 as f64, c as f64, s as f64);
                for (j, (v, mag)) in [
                    (x0 * c - x1 * s, (x0 * c).abs() + (x1 * s).abs()),
                    (x0 * s + x1 * c, (x0 * s).abs() + (x1 * c).abs()),
                ]
                .into_iter()
                .enumerate()
                {
                    let e32 = (y32[k + j] as f64 - v).abs();
                    assert!(
                        e32 <= 2f64.powi(-22) * mag,
                        "f32 [{k}+{j}]: {} vs {v}",
                        y32[k + j]
                    );
                    let e16 = (y16[k + j] as f64 - v).abs();
                    assert!(
                        e16 <= 2f64.powi(-8) * v.abs() + 2f64.powi(-21) * mag,
                        "bf16 [{k}+{j}]: {} vs {v}",
                        y16[k + j]
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, t * h * dim);
}

#[test]
fn rope_position_past_table_is_an_error() {
    let be = backend();
    let x = f32s(&be, &[1, 1, 2], &[1.0, 0.0]);
    let cs = f32s(&be, &[2, 1], &[1.0, 1.0]);
    let pos = u32s(&be, &[1], &[2]);
    let r = run(
        &be,
        Rope {
            offset: 0,
            dim: 2,
            out: DType::F32,
        },
        &[&x, &cs, &cs, &pos],
    );
    assert!(matches!(r, Err(concord_core::Error::InvalidArgument(_))));
}
