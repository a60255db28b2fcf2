//! Fast mode on OpenCL (PoCL in CI): the tiled matmul kernels (ops/fast/, common/tile_gemm.h)
//! with the portable MMA step. Held against the CPU exact output with the tolerances of
//! docs/numerics.md §1, and to the fast-mode guarantees: bit-identical run to run, and a
//! row's result bit-identical whatever batch it is in. F32 operands fall back to the exact
//! kernel, so they stay bit-exact.

use concord_core::convert::{bf16_to_f32, e4m3_to_f32};
use concord_core::DType;
use concord_ops::{BlockFp8Matmul, KernelMode, Matmul, Op};

use crate::harness::{cpu, fast, nmse, opencl, run_on, Data, Out, Rng};

fn values(dtype: DType, bytes: &[u8]) -> Vec<f64> {
    match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        DType::BF16 => bytes
            .chunks_exact(2)
            .map(|b| bf16_to_f32(u16::from_le_bytes(b.try_into().unwrap())) as f64)
            .collect(),
        d => panic!("not an output dtype: {d}"),
    }
}

/// Runs `op` exactly on the CPU and twice in fast mode on OpenCL; asserts the fast result is
/// within `bound` NMSE, finite where the exact one is, and identical between the two runs.
/// Returns the fast output bytes.
fn check_fast(case: &str, op: &Op, inputs: &[Data], out: &Out, bound: f64) -> Vec<u8> {
    let outs = std::slice::from_ref(out);
    let want = run_on(cpu().as_ref(), op, inputs, outs).expect("cpu runs the case");
    let got = run_on(fast().as_ref(), op, inputs, outs).unwrap_or_else(|e| panic!("{case}: {e}"));
    let again = run_on(fast().as_ref(), op, inputs, outs).unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_eq!(got[0], again[0], "{case}: fast mode differs run to run");
    let (e, f) = (
        values(out.desc.dtype, &want[0]),
        values(out.desc.dtype, &got[0]),
    );
    for (i, (a, b)) in e.iter().zip(&f).enumerate() {
        assert_eq!(
            a.is_finite(),
            b.is_finite(),
            "{case}: [{i}] exact {a}, fast {b}"
        );
    }
    let finite = |v: &[f64]| {
        v.iter()
            .map(|x| if x.is_finite() { *x } else { 0.0 })
            .collect::<Vec<_>>()
    };
    let err = nmse(&finite(&e), &finite(&f));
    assert!(err <= bound, "{case}: NMSE {err:e} > {bound:e}");
    got[0].clone()
}

/// Row `r` of a row-major [rows, n] byte matrix of `es`-byte elements.
fn row(bytes: &[u8], n: usize, es: usize, r: usize) -> &[u8] {
    &bytes[r * n * es..(r + 1) * n * es]
}

const SHAPES: [(usize, usize, usize); 8] = [
    (1, 1, 1),
    (1, 300, 65),
    (3, 129, 17),
    (16, 256, 64),
    (17, 128, 130),
    (37, 1000, 9),
    (2, 15, 3),
    (5, 0, 4),
];

#[test]
fn bf16_matmul_is_within_tolerance_and_batch_invariant() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(41);
    for (m, k, n) in SHAPES {
        for out_dt in [DType::BF16, DType::F32] {
            let x = rng.vals(m * k, 2.0);
            let w = rng.vals(n * k, 1.0);
            let case = format!("matmul fast {m}x{k}x{n} ->{out_dt}");
            let op: Op = Matmul { out: out_dt }.into();
            let xs = Data::act(DType::BF16, &[m, k], &x);
            let ws = Data::act(DType::BF16, &[n, k], &w);
            let bound = if out_dt == DType::BF16 { 1e-4 } else { 1e-6 };
            let all = check_fast(
                &case,
                &op,
                &[xs, ws.clone()],
                &Out::new(out_dt, &[m, n]),
                bound,
            );
            // Each row alone gives the bits it got in the batch.
            for r in [0, m / 2, m.saturating_sub(1)] {
                if m == 0 {
                    break;
                }
                let one = Data::act(DType::BF16, &[1, k], &x[r * k..(r + 1) * k]);
                let alone = run_on(
                    fast().as_ref(),
                    &op,
                    &[one, ws.clone()],
                    &[Out::new(out_dt, &[1, n])],
                )
                .expect("one row runs");
                let es = out_dt.size_in_bytes();
                assert_eq!(
                    alone[0],
                    row(&all, n, es, r),
                    "{case}: row {r} depends on the batch"
                );
            }
        }
    }
}

#[test]
fn f32_matmul_keeps_the_exact_kernel_in_fast_mode() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(43);
    let (m, k, n) = (3, 200, 70);
    let op: Op = Matmul { out: DType::F32 }.into();
    let inputs = [
        Data::act(DType::F32, &[m, k], &rng.vals(m * k, 2.0)),
        Data::act(DType::BF16, &[n, k], &rng.vals(n * k, 1.0)),
    ];
    let outs = [Out::new(DType::F32, &[m, n])];
    let want = run_on(cpu().as_ref(), &op, &inputs, &outs).unwrap();
    let got = run_on(fast().as_ref(), &op, &inputs, &outs).unwrap();
    assert_eq!(want, got, "F32 activations must take the exact kernel");
}

#[test]
fn block_fp8_matmul_is_within_tolerance_and_batch_invariant() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(47);
    for (m, k, n, bn) in [
        (2usize, 300usize, 130usize, 128usize),
        (1, 128, 1, 128),
        (19, 1000, 17, 7),
        (3, 7, 66, 1),
        (1, 3000, 3, 2),
    ] {
        let kb = k.div_ceil(128);
        let xq = rng.e4m3_codes(m * k);
        let w = rng.e4m3_codes(n * k);
        let xs: Vec<f32> = (0..m * kb).map(|_| rng.unit() * 0.01 + 1e-6).collect();
        let ws: Vec<f32> = (0..n.div_ceil(bn) * kb)
            .map(|_| rng.unit() * 0.02)
            .collect();
        let op: Op = BlockFp8Matmul {
            block: [bn, 128],
            out: DType::BF16,
        }
        .into();
        let weights = [
            Data::e4m3(&[n, k], w),
            Data::f32(&[n.div_ceil(bn), kb], &ws),
        ];
        let case = format!("block_fp8_matmul fast {m}x{k}x{n} bn={bn}");
        let inputs = [
            Data::e4m3(&[m, k], xq.clone()),
            Data::f32(&[m, kb], &xs),
            weights[0].clone(),
            weights[1].clone(),
        ];
        let all = check_fast(&case, &op, &inputs, &Out::new(DType::BF16, &[m, n]), 1e-3);
        let r = m - 1;
        let one = [
            Data::e4m3(&[1, k], xq[r * k..(r + 1) * k].to_vec()),
            Data::f32(&[1, kb], &xs[r * kb..(r + 1) * kb]),
            weights[0].clone(),
            weights[1].clone(),
        ];
        let alone = run_on(
            fast().as_ref(),
            &op,
            &one,
            &[Out::new(DType::BF16, &[1, n])],
        )
        .unwrap();
        assert_eq!(
            alone[0],
            row(&all, n, 2, r),
            "{case}: row {r} depends on the batch"
        );
        // The values behind the codes are what the kernel widened.
        assert!(xq.iter().all(|&c| !e4m3_to_f32(c).is_nan()));
    }
}

#[test]
fn fast_mode_is_reported_by_the_backend() {
    if opencl().is_none() {
        return;
    }
    assert_eq!(fast().info().mode, KernelMode::Fast);
    assert_eq!(opencl().unwrap().info().mode, KernelMode::Exact);
}
