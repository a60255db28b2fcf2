//! One row of x (decode): matmul and block_fp8_matmul take the GEMV path (weights widened or
//! decoded in registers, rows in groups, small ops on the calling thread, large ones split
//! over threads). Every output must still be the contract's canonical value, bit for bit.
mod common;

use common::*;
use concord_core::convert::{e4m3_to_f32, round_to_bf16};
use concord_core::numerics::reduce::{canonical_block_sum, canonical_sum};
use concord_core::DType;
use concord_ops::{BlockFp8Matmul, Matmul};

/// Values over many magnitudes, so any other summation order shows in the bits.
fn spread(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.uniform(-1.0, 1.0) * 2f32.powi(rng.below(24) as i32 - 12))
        .collect()
}

#[test]
fn gemv_matches_canonical_sum() {
    let be = backend();
    let mut rng = Rng::new(40);
    // (k, n): a partial lane group and partial block; a row count that is not a multiple of
    // the row group; and one large enough to be split over threads.
    for (k, n) in [(7, 5), (300, 37), (1000, 203)] {
        let x = spread(&mut rng, k);
        let w = rng.vec(n * k);
        let wb = rng.vec_bf16(n * k);
        for (wdt, wv) in [(DType::F32, &w), (DType::BF16, &wb)] {
            for out in [DType::F32, DType::BF16] {
                let xt = f32s(&be, &[1, k], &x);
                let wt = act(&be, wdt, &[n, k], wv);
                let got = run1(&be, Matmul { out }, &[&xt, &wt]).f32();
                for j in 0..n {
                    let mut want = canonical_sum(k, |q| x[q] * wv[j * k + q]);
                    if out == DType::BF16 {
                        want = round_to_bf16(want);
                    }
                    assert_eq!(
                        got[j].to_bits(),
                        want.to_bits(),
                        "k {k} n {n} {wdt} weights, {out} out, row {j}"
                    );
                }
            }
        }
    }
}

/// `Σ_kb (blocksum_kb · xs[kb]) · ws[j/bn, kb]` for one row, from +0.0 (spec §6.6).
fn fp8_contract(dx: &[f32], xs: &[f32], dw: &[f32], ws_row: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (kb, (xb, wb)) in dx.chunks(128).zip(dw.chunks(128)).enumerate() {
        let b = canonical_block_sum(xb.len(), |q| xb[q] * wb[q]);
        acc += (b * xs[kb]) * ws_row[kb];
    }
    acc
}

fn fp8_gemv(
    be: &std::sync::Arc<dyn concord_ops::Backend>,
    xq: &[u8],
    xs: &[f32],
    w: &[u8],
    ws: &[f32],
    n: usize,
) -> Vec<f32> {
    let k = xq.len();
    let kb = k.div_ceil(128);
    run1(
        be,
        BlockFp8Matmul {
            block: [128, 128],
            out: DType::F32,
        },
        &[
            &e4m3s(be, &[1, k], xq),
            &f32s(be, &[1, kb], xs),
            &e4m3s(be, &[n, k], w),
            &f32s(be, &[n.div_ceil(128), kb], ws),
        ],
    )
    .f32()
}

#[test]
fn fp8_gemv_matches_contract() {
    let be = backend();
    let mut rng = Rng::new(41);
    for (k, n) in [(20usize, 3usize), (200, 130), (1100, 300)] {
        let kb = k.div_ceil(128);
        let finite = |rng: &mut Rng| loop {
            let b = rng.below(256) as u8;
            if b & 0x7F != 0x7F {
                break b;
            }
        };
        let xq: Vec<u8> = (0..k).map(|_| finite(&mut rng)).collect();
        let w: Vec<u8> = (0..n * k).map(|_| finite(&mut rng)).collect();
        let xs: Vec<f32> = (0..kb).map(|_| rng.uniform(0.001, 0.01)).collect();
        let ws: Vec<f32> = (0..n.div_ceil(128) * kb)
            .map(|_| rng.uniform(0.0005, 0.002))
            .collect();
        let got = fp8_gemv(&be, &xq, &xs, &w, &ws, n);
        let dx: Vec<f32> = xq.iter().map(|b| e4m3_to_f32(*b)).collect();
        for j in 0..n {
            let dw: Vec<f32> = w[j * k..(j + 1) * k]
                .iter()
                .map(|b| e4m3_to_f32(*b))
                .collect();
            let want = fp8_contract(&dx, &xs, &dw, &ws[(j / 128) * kb..(j / 128 + 1) * kb]);
            assert_eq!(got[j].to_bits(), want.to_bits(), "k {k} n {n} row {j}");
        }
    }
}

#[test]
fn fp8_gemv_decodes_every_code() {
    // Row j holds code j once (at column j % 128, against x = 1.0) and zeros elsewhere, so
    // out[j] = decode(j) · 1 · xs · ws: every code, NaN codes 0x7F and 0xFF included, passes
    // through the in-register decode.
    let be = backend();
    let (k, n) = (128, 256);
    let xq = vec![0x38u8; k]; // 1.0
    let mut w = vec![0u8; n * k];
    for j in 0..n {
        w[j * k + j % k] = j as u8;
    }
    let ws = vec![1.0f32; 2];
    let got = fp8_gemv(&be, &xq, &[1.0], &w, &ws, n);
    for (j, g) in got.iter().enumerate() {
        let want = e4m3_to_f32(j as u8);
        if want.is_nan() {
            assert!(g.is_nan(), "code {j:#04x}: got {g}");
        } else {
            // +0.0 lanes plus the one product: -0.0 sums to +0.0.
            assert_eq!(g.to_bits(), (want + 0.0).to_bits(), "code {j:#04x}");
        }
    }
}
