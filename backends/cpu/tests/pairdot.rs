//! The pair-dot tier (AVX512-BF16 `vdpbf16ps` on operands in pair order) must give the
//! contract's canonical value bit for bit wherever it runs, and must refuse the operands on
//! which it would not (subnormal, huge or non-bf16 x, unsafe weights, NaN codes), which then
//! take the other kernels, still exact. Expected values come from `concord_core`'s
//! `canonical_sum` / `canonical_block_sum` written term by term, never from the kernels.
//! Every test prints SKIP and returns on a CPU without AVX512-BF16.
mod common;

use common::*;
use concord_backend_cpu::testing;
use concord_core::convert::{bf16_to_f32, e4m3_to_f32, f32_to_bf16, round_to_bf16};
use concord_core::numerics::reduce::{canonical_block_sum, canonical_sum};
use concord_core::DType;
use concord_ops::{BlockFp8Matmul, Matmul};

/// K around the 16-lane, 32-term step, 64-code chunk and 128-block edges, and past the 16
/// blocks whose lane trees the GEMV runs together.
const KS: &[usize] = &[
    1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 73, 127, 128, 129, 219, 292, 1024, 2177,
];

/// Whether the tier exists here; prints why the test is skipped where it does not.
fn available(test: &str) -> bool {
    let yes = testing::pairdot_available();
    if !yes {
        println!("SKIP {test}: this CPU has no AVX512-BF16 (the pair-dot tier never runs)");
    }
    yes
}

/// bf16 values over many magnitudes (2⁻¹² … 2¹²), so any other order shows in the bits.
fn spread_bf16(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| round_to_bf16(rng.uniform(-1.0, 1.0) * 2f32.powi(rng.below(24) as i32 - 12)))
        .collect()
}

/// Canonical `x[i] · w[j]` for all i < m, j < n.
fn want_gemm(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            y[i * n + j] = canonical_sum(k, |q| x[i * k + q] * w[j * k + q]);
        }
    }
    y
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn bf16_pair_dot_is_the_canonical_dot_for_every_edge_shape() {
    if !available("bf16_pair_dot_is_the_canonical_dot_for_every_edge_shape") {
        return;
    }
    let mut rng = Rng::new(2026);
    // Every row-group remainder of the 4 × 4 kernel (M up to 13: three whole groups and one
    // partial) and every panel remainder (N up to 9); for the few-rows kernel (M ≤ 8: strips
    // of 4, 2 and 1 rows taking 4, 8 and 16 weight rows at a time) whole and partial groups
    // of 16 weight rows too.
    for &k in KS {
        for m in 1..=13 {
            for n in (1..=9).chain([15, 16, 17, 33]) {
                let x = spread_bf16(&mut rng, m * k);
                let w = spread_bf16(&mut rng, n * k);
                let wb: Vec<u16> = w.iter().map(|v| f32_to_bf16(*v)).collect();
                let got = testing::gemm_pairdot_bf16(&x, k, &wb, n)
                    .unwrap_or_else(|| panic!("m {m} n {n} k {k}: the tier refused safe values"));
                assert_eq!(
                    bits(&got),
                    bits(&want_gemm(&x, &w, m, n, k)),
                    "m {m} n {n} k {k}"
                );
            }
        }
    }
}

#[test]
fn pair_dot_split_over_threads_is_the_canonical_dot() {
    if !available("pair_dot_split_over_threads_is_the_canonical_dot") {
        return;
    }
    // Enough work to split over the pool's threads: by weight rows below 32 rows of x per
    // task (each task packing its panels), by rows of x from there (M ≥ 256 on 8 tasks);
    // both must give every output's canonical bits, in its place.
    let mut rng = Rng::new(4242);
    for (m, n, k) in [
        // A few rows (the few-rows kernel), split by weight rows.
        (2, 700, 200),
        (5, 600, 129),
        (7, 290, 256),
        (32, 37, 219),
        (40, 70, 300),
        (64, 9, 1024),
        (100, 33, 129),
        (200, 21, 257),
        (300, 11, 219),
    ] {
        let x = spread_bf16(&mut rng, m * k);
        let w = spread_bf16(&mut rng, n * k);
        let wb: Vec<u16> = w.iter().map(|v| f32_to_bf16(*v)).collect();
        let got = testing::gemm_pairdot_bf16(&x, k, &wb, n)
            .unwrap_or_else(|| panic!("m {m} n {n} k {k}: the tier refused safe values"));
        assert_eq!(
            bits(&got),
            bits(&want_gemm(&x, &w, m, n, k)),
            "m {m} n {n} k {k}"
        );
    }
}

#[test]
fn matmul_with_bf16_activations_is_the_canonical_dot() {
    if !available("matmul_with_bf16_activations_is_the_canonical_dot") {
        return;
    }
    // Through the op: BF16 x and w, so the storage's weight check and the x check pass.
    let be = backend();
    let mut rng = Rng::new(7);
    for (m, n, k) in [(2, 9, 129), (9, 33, 300), (64, 67, 1024), (130, 17, 219)] {
        let x = spread_bf16(&mut rng, m * k);
        let w = spread_bf16(&mut rng, n * k);
        let xt = bf16s(&be, &[m, k], &x);
        let wt = bf16s(&be, &[n, k], &w);
        let got = run1(&be, Matmul { out: DType::F32 }, &[&xt, &wt]).f32();
        assert_eq!(
            bits(&got),
            bits(&want_gemm(&x, &w, m, n, k)),
            "m {m} n {n} k {k}"
        );
    }
}

#[test]
fn unsafe_bf16_operands_are_refused_and_still_exact() {
    if !available("unsafe_bf16_operands_are_refused_and_still_exact") {
        return;
    }
    let be = backend();
    let mut rng = Rng::new(11);
    let (m, n, k) = (4, 5, 73);
    let base_x = spread_bf16(&mut rng, m * k);
    let base_w = spread_bf16(&mut rng, n * k);
    // (what, x, w): each breaks the tier's exactness in one place.
    let mut cases: Vec<(&str, Vec<f32>, Vec<f32>)> = Vec::new();
    let mut x = base_x.clone();
    x[40] = bf16_to_f32(0x0001); // a subnormal bf16: the instruction would flush it
    cases.push(("subnormal x", x, base_w.clone()));
    let mut x = base_x.clone();
    x[3] = 2f32.powi(60); // products could overflow or pass the safe range
    cases.push(("huge x", x, base_w.clone()));
    let mut x = base_x.clone();
    x[5] = 1.0 + f32::EPSILON; // not a bf16 value: it would be truncated
    cases.push(("non-bf16 x", x, base_w.clone()));
    let mut x = base_x.clone();
    x[7] = 2f32.powi(-51); // just below the safe range
    cases.push(("tiny x", x, base_w.clone()));
    let mut w = base_w.clone();
    w[100] = 2f32.powi(-70);
    cases.push(("tiny w", base_x.clone(), w));
    for (what, x, w) in cases {
        let wb: Vec<u16> = w.iter().map(|v| f32_to_bf16(*v)).collect();
        assert!(
            testing::gemm_pairdot_bf16(&x, k, &wb, n).is_none(),
            "{what}: the tier must refuse it"
        );
        // The op falls back to the other kernels: still the canonical dot.
        let xt = f32s(&be, &[m, k], &x);
        let wt = bf16s(&be, &[n, k], &w);
        let got = run1(&be, Matmul { out: DType::F32 }, &[&xt, &wt]).f32();
        let want = want_gemm(&x, &w, m, n, k);
        assert_eq!(bits(&got), bits(&want), "{what} through matmul");
    }
    // The edges of the safe range are taken, and exact.
    let mut x = base_x.clone();
    x[0] = 2f32.powi(-50);
    x[1] = -(2f32.powi(49) * 1.9921875); // the largest bf16 below 2⁵⁰
    x[2] = -0.0;
    let wb: Vec<u16> = base_w.iter().map(|v| f32_to_bf16(*v)).collect();
    let got = testing::gemm_pairdot_bf16(&x, k, &wb, n).expect("safe-range edges");
    assert_eq!(bits(&got), bits(&want_gemm(&x, &base_w, m, n, k)), "edges");
}

/// Spec §6.6 written term by term: the canonical block sums of decoded codes, times the
/// activation scale, times the weight scale, added in block order from +0.0.
#[allow(clippy::too_many_arguments)]
fn want_fp8(
    xq: &[u8],
    xs: &[f32],
    w: &[u8],
    ws: &[f32],
    m: usize,
    n: usize,
    k: usize,
    bn: usize,
) -> Vec<f32> {
    let kb = k.div_ceil(128);
    let mut y = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut total = 0.0f32;
            for b in 0..kb {
                let c0 = b * 128;
                let len = (k - c0).min(128);
                let s = canonical_block_sum(len, |q| {
                    e4m3_to_f32(xq[i * k + c0 + q]) * e4m3_to_f32(w[j * k + c0 + q])
                });
                total += (s * xs[i * kb + b]) * ws[(j / bn) * kb + b];
            }
            y[i * n + j] = total;
        }
    }
    y
}

/// Every e4m3 code but the two NaNs, in a random order.
fn all_codes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| loop {
            let c = rng.below(256) as u8;
            if c & 0x7F != 0x7F {
                break c;
            }
        })
        .collect()
}

#[test]
fn e4m3_pair_dot_is_spec_6_6_for_every_code_and_edge_shape() {
    if !available("e4m3_pair_dot_is_spec_6_6_for_every_code_and_edge_shape") {
        return;
    }
    let mut rng = Rng::new(88);
    for &k in KS {
        for m in 1..=13 {
            for (n, bn) in [
                (1, 1),
                (2, 1),
                (3, 2),
                (4, 3),
                (5, 2),
                (6, 1),
                (7, 128),
                (8, 4),
                (9, 2),
                (16, 3),
                (17, 128),
                (33, 5),
            ] {
                let kb = k.div_ceil(128);
                let xq = all_codes(&mut rng, m * k);
                let w = all_codes(&mut rng, n * k);
                let xs: Vec<f32> = (0..m * kb).map(|_| rng.uniform(0.001, 0.01)).collect();
                let ws: Vec<f32> = (0..n.div_ceil(bn) * kb)
                    .map(|_| rng.uniform(0.0005, 0.002))
                    .collect();
                let got = testing::gemm_pairdot_e4m3((&xq, &xs), k, (&w, &ws, bn), n)
                    .unwrap_or_else(|| panic!("m {m} n {n} k {k}: the tier refused"));
                let want = want_fp8(&xq, &xs, &w, &ws, m, n, k, bn);
                assert_eq!(bits(&got), bits(&want), "m {m} n {n} k {k} bn {bn}");
            }
        }
    }
}

#[test]
fn every_e4m3_code_decodes_exactly() {
    if !available("every_e4m3_code_decodes_exactly") {
        return;
    }
    // Weight row j is code j alone, x is 1.0 (code 0x38), scales 1: y[j] is code j's value,
    // subnormals (exponent field 0) and ±0 included.
    let w: Vec<u8> = (0..=255u8).filter(|c| c & 0x7F != 0x7F).collect();
    let n = w.len();
    let xq = [0x38u8, 0x38];
    let got = testing::gemm_pairdot_e4m3((&xq, &[1.0, 1.0]), 1, (&w, &vec![1.0; n], 1), n)
        .expect("the tier takes every non-NaN code");
    for (j, &c) in w.iter().enumerate() {
        // A product that is -0.0 adds to +0.0: the block sum is +0.0.
        let want = 0.0 + e4m3_to_f32(c);
        assert_eq!(got[j].to_bits(), want.to_bits(), "code {c:#04x}");
        assert_eq!(got[n + j].to_bits(), want.to_bits(), "code {c:#04x}, row 1");
    }
}

#[test]
fn nan_codes_are_refused_and_the_op_still_follows_the_spec() {
    if !available("nan_codes_are_refused_and_the_op_still_follows_the_spec") {
        return;
    }
    let be = backend();
    let mut rng = Rng::new(5);
    let (m, n, k) = (3usize, 5usize, 129usize);
    let kb = k.div_ceil(128);
    let xq = all_codes(&mut rng, m * k);
    let w = all_codes(&mut rng, n * k);
    let xs = vec![0.01f32; m * kb];
    let ws = vec![0.002f32; n * kb];
    for (what, x_nan, w_nan) in [("x", true, false), ("w", false, true)] {
        let mut xq = xq.clone();
        let mut w = w.clone();
        if x_nan {
            xq[k + 3] = 0xFF;
        }
        if w_nan {
            w[2 * k + 100] = 0x7F;
        }
        assert!(
            testing::gemm_pairdot_e4m3((&xq, &xs), k, (&w, &ws, 1), n).is_none(),
            "a NaN code in {what} must be refused"
        );
        let ins = [
            e4m3s(&be, &[m, k], &xq),
            f32s(&be, &[m, kb], &xs),
            e4m3s(&be, &[n, k], &w),
            f32s(&be, &[n, kb], &ws),
        ];
        let refs: Vec<&T> = ins.iter().collect();
        let op = BlockFp8Matmul {
            block: [1, 128],
            out: DType::F32,
        };
        let got = run1(&be, op, &refs).f32();
        let want = want_fp8(&xq, &xs, &w, &ws, m, n, k, 1);
        for (i, (g, wv)) in got.iter().zip(&want).enumerate() {
            assert!(
                g.to_bits() == wv.to_bits() || (g.is_nan() && wv.is_nan()),
                "NaN in {what}: [{i}] got {g}, want {wv}"
            );
        }
    }
}

#[test]
fn a_rewritten_weight_is_checked_again() {
    if !available("a_rewritten_weight_is_checked_again") {
        return;
    }
    // The weight check is remembered per buffer; writing the buffer must forget it. Row 0 of
    // the new weight is all subnormal bf16 values, which `vdpbf16ps` would flush to zero,
    // against x = 2⁴⁰ whose products with them are normal: the canonical y[.., 0] ≠ 0.
    let be = backend();
    let mut rng = Rng::new(3);
    let (m, n, k) = (4usize, 3usize, 64usize);
    let x = vec![2f32.powi(40); m * k];
    let safe = spread_bf16(&mut rng, n * k);
    let xt = bf16s(&be, &[m, k], &x);
    let wt = bf16s(&be, &[n, k], &safe);
    let got = run1(&be, Matmul { out: DType::F32 }, &[&xt, &wt]).f32();
    assert_eq!(
        bits(&got),
        bits(&want_gemm(&x, &safe, m, n, k)),
        "safe weight"
    );
    let mut w = safe.clone();
    for (q, v) in w[..k].iter_mut().enumerate() {
        *v = bf16_to_f32(1 + q as u16);
    }
    let bytes: Vec<u8> = w
        .iter()
        .flat_map(|v| f32_to_bf16(*v).to_le_bytes())
        .collect();
    be.write(&wt.buf, 0, &bytes).unwrap();
    let got = run1(&be, Matmul { out: DType::F32 }, &[&xt, &wt]).f32();
    let want = want_gemm(&x, &w, m, n, k);
    assert_ne!(want[0], 0.0, "the test needs a row the flush would change");
    assert_eq!(bits(&got), bits(&want), "rewritten weight");
}
