//! fp8_act_quant and block_fp8_matmul.
mod common;

use common::*;
use concord_core::convert::{e4m3_to_f32, round_to_bf16};
use concord_core::numerics::reduce::canonical_block_sum;
use concord_core::DType;
use concord_ops::{ActScaleFormat, BlockFp8Matmul, Fp8ActQuant};

fn quant(x: &[f32], m: usize, k: usize) -> (Vec<u8>, Vec<f32>) {
    quant_in(ActScaleFormat::F32, x, m, k)
}

fn quant_in(scale_fmt: ActScaleFormat, x: &[f32], m: usize, k: usize) -> (Vec<u8>, Vec<f32>) {
    let be = backend();
    let out = run(&be, Fp8ActQuant { scale_fmt }, &[&f32s(&be, &[m, k], x)]).unwrap();
    (out[0].bytes.clone(), out[1].f32())
}

#[test]
fn act_quant_ue8m0_rounds_the_scale_up_to_a_power_of_two() {
    // Block 0: amax 448·(1 + 2^-23), s = 1 + 2^-23 → 2 in ue8m0. Block 1 (partial, 2 columns):
    // amax 448, s = 1 already a power of two. Codes by hand (spec §6.7): 224 = 1.75·2^7 → 0x76,
    // 0.5 → 0x30, 448 → 0x7E, 1 → 0x38.
    let mut x = vec![0.0f32; 130];
    x[0] = f32::from_bits(448.0f32.to_bits() + 1);
    x[1] = 1.0;
    x[128] = 448.0;
    x[129] = -1.0;
    let (q, s) = quant_in(ActScaleFormat::Ue8m0, &x, 1, 130);
    assert_eq!(s, vec![2.0, 1.0]);
    assert_eq!((q[0], q[1], q[128], q[129]), (0x76, 0x30, 0x7E, 0xB8));
    // Plain scales for the same input: s = 1 + 2^-23, and x/s rounds back to 448 and 1.
    let (q, s) = quant(&x, 1, 130);
    assert_eq!(s, vec![f32::from_bits(0x3F80_0001), 1.0]);
    assert_eq!((q[0], q[1], q[128], q[129]), (0x7E, 0x38, 0x7E, 0xB8));
    // The 1e-4 floor: 1e-4/448 ≈ 2.23e-7 rounds up to 2^-22.
    let (_, s) = quant_in(ActScaleFormat::Ue8m0, &[0.0; 3], 1, 3);
    assert_eq!(s, vec![2f32.powi(-22)]);
    // ∞ and NaN scales stay what they are.
    let (q, s) = quant_in(
        ActScaleFormat::Ue8m0,
        &[f32::INFINITY, 1.0, f32::NAN, 1.0],
        2,
        2,
    );
    assert_eq!(s[0], f32::INFINITY);
    assert!(s[1].is_nan());
    assert_eq!(q, vec![0x7F, 0x00, 0x7F, 0x7F]);
}

#[test]
fn act_quant_all_zero_block() {
    let (q, s) = quant(&[0.0; 130], 1, 130);
    assert!(q.iter().all(|&b| b == 0));
    // amax is clamped to 1e-4 in both blocks (the second one is partial: 2 columns).
    assert_eq!(s, vec![1e-4f32 / 448.0; 2]);
}

#[test]
fn act_quant_exact_codes_at_unit_scale() {
    // amax 448 → s = 1 exactly; codes from spec §6.7.
    let mut x = vec![0.0f32; 128];
    x[..6].copy_from_slice(&[448.0, -448.0, 1.0, 0.1, -2.5, 300.0]);
    let (q, s) = quant(&x, 1, 128);
    assert_eq!(s, vec![1.0]);
    assert_eq!(&q[..6], &[0x7E, 0xFE, 0x38, 0x1D, 0xC2, 0x79]);
}

#[test]
fn act_quant_amax_element_saturates_to_448() {
    // x/s for the amax element is 448 up to one rounding of the division; satfinite keeps it
    // at the largest code even when the quotient rounds above 448.
    let mut rng = Rng::new(30);
    let mut above = 0;
    for _ in 0..2000 {
        let amax = rng.uniform(1e-3, 1e4);
        if amax / (amax / 448.0) > 448.0 {
            above += 1;
        }
        let x = [amax, -amax, amax * 0.5];
        let (q, s) = quant(&x, 1, 3);
        assert_eq!(s[0], amax / 448.0);
        assert_eq!(&q[..2], &[0x7E, 0xFE], "amax {amax}");
    }
    assert!(
        above > 0,
        "no quotient rounded above 448: the case is not exercised"
    );
}

#[test]
fn act_quant_non_finite_blocks() {
    // ∞ → s = ∞: finite elements quantize to 0, the infinite one to NaN (∞/∞).
    let (q, s) = quant(&[f32::INFINITY, 1.0, -1.0], 1, 3);
    assert_eq!(s, vec![f32::INFINITY]);
    assert_eq!(q, vec![0x7F, 0x00, 0x80]);
    // A NaN makes the block's scale NaN and every code NaN.
    let (q, s) = quant(&[f32::NAN, 1.0], 1, 2);
    assert!(s[0].is_nan());
    assert_eq!(q, vec![0x7F, 0x7F]);
}

#[test]
fn act_quant_partial_last_block_uses_its_own_amax() {
    let (m, k) = (2, 200);
    let mut rng = Rng::new(31);
    let x: Vec<f32> = (0..m * k)
        .map(|i| {
            if i % k < 128 {
                rng.uniform(-50.0, 50.0)
            } else {
                rng.uniform(-0.5, 0.5)
            }
        })
        .collect();
    let (q, s) = quant(&x, m, k);
    for r in 0..m {
        for (b, cols) in [(0, 0..128), (1, 128..200)] {
            let amax = x[r * k..(r + 1) * k][cols.clone()]
                .iter()
                .fold(0.0f32, |a, v| a.max(v.abs()));
            assert_eq!(s[r * 2 + b], amax.max(1e-4) / 448.0);
            for c in cols {
                let back = e4m3_to_f32(q[r * k + c]) as f64 * s[r * 2 + b] as f64;
                let err = (back - x[r * k + c] as f64).abs();
                // e4m3 has 3 mantissa bits: relative error ≤ 2^-4, absolute ≤ 2^-10·s below 2^-6.
                assert!(err <= (x[r * k + c].abs() as f64 / 16.0).max(s[r * 2 + b] as f64 / 512.0));
            }
        }
    }
}

/// Random finite e4m3 codes (no 0x7F/0xFF NaN codes).
fn codes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| loop {
            let b = rng.below(256) as u8;
            if b & 0x7F != 0x7F {
                break b;
            }
        })
        .collect()
}

#[test]
fn block_fp8_matmul_partial_blocks() {
    let be = backend();
    let mut rng = Rng::new(32);
    let (m, k, n) = (3, 200, 130);
    let xq = codes(&mut rng, m * k);
    let w = codes(&mut rng, n * k);
    let xs: Vec<f32> = (0..m * 2).map(|_| rng.uniform(0.001, 0.01)).collect();
    let ws: Vec<f32> = (0..4).map(|_| rng.uniform(0.0005, 0.002)).collect();
    let ins = [
        e4m3s(&be, &[m, k], &xq),
        f32s(&be, &[m, 2], &xs),
        e4m3s(&be, &[n, k], &w),
        f32s(&be, &[2, 2], &ws),
    ];
    let refs: Vec<&T> = ins.iter().collect();
    let y32 = run1(
        &be,
        BlockFp8Matmul {
            block: [128, 128],
            out: DType::F32,
        },
        &refs,
    )
    .f32();
    let y16 = run1(
        &be,
        BlockFp8Matmul {
            block: [128, 128],
            out: DType::BF16,
        },
        &refs,
    )
    .f32();
    let dx: Vec<f32> = xq.iter().map(|b| e4m3_to_f32(*b)).collect();
    let dw: Vec<f32> = w.iter().map(|b| e4m3_to_f32(*b)).collect();
    for i in 0..m {
        for j in 0..n {
            // Direct f64 evaluation of Σ_kb (Σ_k dx·dw)·xs[i,kb]·ws[j/128,kb].
            let (mut want, mut mag, mut contract) = (0.0f64, 0.0f64, 0.0f32);
            for kb in 0..2 {
                let cols = kb * 128..(kb * 128 + 128).min(k);
                let sc = xs[i * 2 + kb] as f64 * ws[(j / 128) * 2 + kb] as f64;
                for c in cols.clone() {
                    let p = dx[i * k + c] as f64 * dw[j * k + c] as f64;
                    want += p * sc;
                    mag += (p * sc).abs();
                }
                let b = canonical_block_sum(cols.len(), |q| {
                    dx[i * k + cols.start + q] * dw[j * k + cols.start + q]
                });
                contract += (b * xs[i * 2 + kb]) * ws[(j / 128) * 2 + kb];
            }
            let got = y32[i * n + j];
            assert!(
                (got as f64 - want).abs() <= 1e-5 * mag,
                "[{i},{j}] got {got} want {want}"
            );
            assert_eq!(
                got.to_bits(),
                contract.to_bits(),
                "[{i},{j}] contract order"
            );
            assert_eq!(y16[i * n + j].to_bits(), round_to_bf16(contract).to_bits());
        }
    }
}

#[test]
fn block_fp8_matmul_row_blocks_of_64() {
    // A weight block of [64, 128]: rows 64.. use the second scale row.
    let be = backend();
    let (k, n) = (128, 128);
    let xq = vec![0x38u8; k]; // 1.0
    let w = vec![0x38u8; n * k]; // 1.0
    let out = run1(
        &be,
        BlockFp8Matmul {
            block: [64, 128],
            out: DType::F32,
        },
        &[
            &e4m3s(&be, &[1, k], &xq),
            &f32s(&be, &[1, 1], &[0.5]),
            &e4m3s(&be, &[n, k], &w),
            &f32s(&be, &[2, 1], &[1.0, 2.0]),
        ],
    )
    .f32();
    // Σ 1·1 over 128 columns = 128; × 0.5 × (1 or 2).
    assert!(out[..64].iter().all(|v| *v == 64.0));
    assert!(out[64..].iter().all(|v| *v == 128.0));
}
