//! Prefill (several rows of x): matmul and block_fp8_matmul take the register-blocked
//! micro-kernels (4 rows of x × 4 weight rows, edges padded, rows or weight tiles split over
//! threads; the explicit AVX-512 kernel for BF16/F32 weights where the CPU has it, the
//! portable one otherwise). Every output must be the contract's canonical value bit for bit,
//! whatever M, N and K — the expected values come from `concord_core`'s `canonical_sum` and
//! `canonical_block_sum`, written term by term, never from the kernels.
mod common;

use common::*;
use concord_backend_cpu::testing;
use concord_core::convert::{bf16_to_f32, e4m3_to_f32, f32_to_bf16, round_to_bf16};
use concord_core::numerics::reduce::{canonical_block_sum, canonical_sum};
use concord_core::DType;
use concord_ops::{BlockFp8Matmul, Matmul};

/// K around the 16-lane and 128-block edges, K < 16 included.
const KS: &[usize] = &[1, 7, 15, 16, 17, 100, 128, 129, 300];

/// Values over many magnitudes, so that any other summation order shows in the bits.
fn spread(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.uniform(-1.0, 1.0) * 2f32.powi(rng.below(24) as i32 - 12))
        .collect()
}

/// The canonical dot of row i of x [.., k] with row j of w [.., k].
fn want_dot(x: &[f32], w: &[f32], k: usize, i: usize, j: usize) -> f32 {
    canonical_sum(k, |q| x[i * k + q] * w[j * k + q])
}

/// matmul with (m, n, k) on F32 and BF16 weights, F32 and BF16 outputs.
fn check_matmul(rng: &mut Rng, m: usize, n: usize, k: usize) {
    let be = backend();
    let x = spread(rng, m * k);
    let w = spread(rng, n * k);
    let wb: Vec<f32> = w.iter().map(|v| round_to_bf16(*v)).collect();
    for (wdt, wv) in [(DType::F32, &w), (DType::BF16, &wb)] {
        let xt = f32s(&be, &[m, k], &x);
        let wt = act(&be, wdt, &[n, k], wv);
        let y32 = run1(&be, Matmul { out: DType::F32 }, &[&xt, &wt]).f32();
        let y16 = run1(&be, Matmul { out: DType::BF16 }, &[&xt, &wt]).f32();
        for i in 0..m {
            for j in 0..n {
                let want = want_dot(&x, wv, k, i, j);
                let at = format!("m {m} n {n} k {k}, {wdt} weights, [{i},{j}]");
                assert_eq!(y32[i * n + j].to_bits(), want.to_bits(), "{at}");
                assert_eq!(
                    y16[i * n + j].to_bits(),
                    round_to_bf16(want).to_bits(),
                    "{at}, BF16 out"
                );
            }
        }
    }
}

#[test]
fn matmul_is_canonical_for_every_small_shape() {
    let mut rng = Rng::new(60);
    for m in 1..=9 {
        for n in 1..=33 {
            for &k in KS {
                check_matmul(&mut rng, m, n, k);
            }
        }
    }
}

#[test]
fn matmul_is_canonical_when_split_over_threads() {
    // Enough work to be split: many rows (tasks take whole rows of out) and few rows (tasks
    // take tiles of weight rows), with ragged edges everywhere.
    let mut rng = Rng::new(61);
    for (m, n, k) in [(41, 70, 300), (5, 301, 257), (130, 37, 1030)] {
        check_matmul(&mut rng, m, n, k);
    }
}

#[test]
fn portable_kernel_is_canonical() {
    // The kernel of CPUs without AVX-512, called directly (this machine's matmul may take the
    // AVX-512 one for these weight types).
    let mut rng = Rng::new(62);
    for (m, n, k) in [
        (1, 1, 1),
        (3, 5, 15),
        (4, 4, 16),
        (5, 9, 17),
        (9, 33, 129),
        (6, 7, 300),
    ] {
        let x = spread(&mut rng, m * k);
        let w = spread(&mut rng, n * k);
        let wb: Vec<u16> = w.iter().map(|v| f32_to_bf16(*v)).collect();
        let wbf: Vec<f32> = wb.iter().map(|b| bf16_to_f32(*b)).collect();
        let y32 = testing::gemm_portable_f32(&x, k, &w, n);
        let y16 = testing::gemm_portable_bf16(&x, k, &wb, n);
        for i in 0..m {
            for j in 0..n {
                let at = format!("m {m} n {n} k {k} [{i},{j}]");
                let want = want_dot(&x, &w, k, i, j);
                assert_eq!(y32[i * n + j].to_bits(), want.to_bits(), "{at} f32");
                let want = want_dot(&x, &wbf, k, i, j);
                assert_eq!(y16[i * n + j].to_bits(), want.to_bits(), "{at} bf16");
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

/// block_fp8_matmul with (m, n, k) and weight blocks of `bn` rows against spec §6.6 written
/// out: `Σ_kb (canonical_block_sum_kb · xs[i,kb]) · ws[j/bn,kb]` from +0.0.
fn check_fp8(rng: &mut Rng, m: usize, n: usize, k: usize, bn: usize) {
    let be = backend();
    let kb = k.div_ceil(128);
    let xq = codes(rng, m * k);
    let w = codes(rng, n * k);
    let xs: Vec<f32> = (0..m * kb).map(|_| rng.uniform(0.001, 0.01)).collect();
    let ws: Vec<f32> = (0..n.div_ceil(bn) * kb)
        .map(|_| rng.uniform(0.0005, 0.002))
        .collect();
    let ins = [
        e4m3s(&be, &[m, k], &xq),
        f32s(&be, &[m, kb], &xs),
        e4m3s(&be, &[n, k], &w),
        f32s(&be, &[n.div_ceil(bn), kb], &ws),
    ];
    let refs: Vec<&T> = ins.iter().collect();
    let op = BlockFp8Matmul {
        block: [bn, 128],
        out: DType::F32,
    };
    let got = run1(&be, op, &refs).f32();
    let dx: Vec<f32> = xq.iter().map(|b| e4m3_to_f32(*b)).collect();
    let dw: Vec<f32> = w.iter().map(|b| e4m3_to_f32(*b)).collect();
    for i in 0..m {
        for j in 0..n {
            let mut want = 0.0f32;
            for b in 0..kb {
                let c0 = b * 128;
                let len = (k - c0).min(128);
                let s = canonical_block_sum(len, |q| dx[i * k + c0 + q] * dw[j * k + c0 + q]);
                want += (s * xs[i * kb + b]) * ws[(j / bn) * kb + b];
            }
            assert_eq!(
                got[i * n + j].to_bits(),
                want.to_bits(),
                "m {m} n {n} k {k} bn {bn} [{i},{j}]"
            );
        }
    }
}

#[test]
fn block_fp8_matmul_is_the_contract_for_every_small_shape() {
    let mut rng = Rng::new(63);
    for m in 2..=9 {
        for n in 1..=33 {
            for &k in &[1usize, 15, 17, 129, 300] {
                check_fp8(&mut rng, m, n, k, 128);
            }
        }
    }
}

#[test]
fn block_fp8_matmul_is_the_contract_when_split_over_threads() {
    let mut rng = Rng::new(64);
    for (m, n, k, bn) in [(41, 70, 300, 128), (5, 301, 257, 64), (70, 130, 1030, 128)] {
        check_fp8(&mut rng, m, n, k, bn);
    }
}

#[test]
fn block_fp8_matmul_decodes_every_code_in_the_blocked_kernel() {
    // Two rows of x (the prefill path), and nine (more than 8: e4m3 weight panels are then
    // widened once into f32 before the kernel). Weight row j holds code j at column j % 128 and
    // zeros elsewhere; x is 1.0 there, so out[r, j] = decode(j) · 1 · xs · ws: each of the
    // 256 codes (the NaN codes 0x7F and 0xFF included) passes through the kernel's decode.
    let be = backend();
    for m in [2usize, 9] {
        let (n, k) = (256usize, 128usize);
        let xq = vec![0x38u8; m * k]; // 1.0
        let mut w = vec![0u8; n * k];
        for j in 0..n {
            w[j * k + j % k] = j as u8;
        }
        let ins = [
            e4m3s(&be, &[m, k], &xq),
            f32s(&be, &[m, 1], &(1..=m).map(|r| r as f32).collect::<Vec<_>>()),
            e4m3s(&be, &[n, k], &w),
            f32s(&be, &[2, 1], &[1.0, 1.0]),
        ];
        let refs: Vec<&T> = ins.iter().collect();
        let op = BlockFp8Matmul {
            block: [128, 128],
            out: DType::F32,
        };
        let got = run1(&be, op, &refs).f32();
        for r in 0..m {
            for j in 0..n {
                // Spec §6.6 for one block: the block's canonical sum (from +0.0, so the −0.0 code
                // gives +0.0), times xs = r + 1, times ws = 1, added to +0.0.
                let b = canonical_block_sum(k, |q| e4m3_to_f32(xq[q]) * e4m3_to_f32(w[j * k + q]));
                let want = 0.0 + (b * (r + 1) as f32) * 1.0;
                let g = got[r * n + j];
                if want.is_nan() {
                    assert!(g.is_nan(), "code {j:#04x}, row {r}: got {g}");
                } else {
                    assert_eq!(g.to_bits(), want.to_bits(), "code {j:#04x}, row {r}");
                }
            }
        }
    }
}
