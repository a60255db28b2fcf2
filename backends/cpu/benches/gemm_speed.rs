//! Prefill GEMM speed, a benchmark rather than a test
//! (`cargo bench -p concord-backend-cpu --bench gemm_speed`).
//! Prints the median time of matmul (BF16 weights) and block_fp8_matmul with M rows of x over
//! the weight shapes of the hidden-1024 synthetic model (dense projections at M = 128, a routed
//! expert's M ≈ 12–16) and the multiply-adds per second. Called from the test thread, outside
//! rayon's pool, as the runtime calls the backend.
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use concord_core::DType;
use concord_ops::{BlockFp8Matmul, Matmul, Op};

fn median_seconds(op: &Op, ins: &[&T]) -> f64 {
    let be = backend();
    let descs: Vec<_> = ins.iter().map(|t| t.desc.clone()).collect();
    let outs = op.infer(&descs).unwrap();
    let bufs: Vec<_> = outs.iter().map(|d| be.alloc(d.bytes()).unwrap()).collect();
    let in_args: Vec<_> = ins.iter().map(|t| t.arg()).collect();
    let out_args: Vec<_> = bufs
        .iter()
        .zip(&outs)
        .map(|(b, d)| concord_ops::TensorArg::new(b, d.dtype, d.shape.clone()))
        .collect();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 9 || (start.elapsed().as_secs_f64() < 0.5 && times.len() < 500) {
        let t = Instant::now();
        be.run(op, &in_args, &out_args).unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let be = backend();
    let mut rng = Rng::new(51);
    println!("threads {}", rayon::current_num_threads());
    // CONCORD_BENCH_PAIR_ONLY=1 times the pair-dot tier only (the f32 kernels are slower to
    // time and untouched by pair-dot work).
    let pair_only = std::env::var_os("CONCORD_BENCH_PAIR_ONLY").is_some();
    // GEMM_SHAPES="m,n,k;…" times those shapes instead, the calls made from a pool worker
    // (inside one host_scope, as a forward pass makes them: no hand-off per call).
    if let Some(shapes) = env_shapes::<3>("GEMM_SHAPES") {
        for [m, n, k] in shapes {
            let w = bf16s(&be, &[n, k], &rng.vec_bf16(n * k));
            let x = f32s(&be, &[m, k], &rng.vec_bf16(m * k));
            let op: Op = Matmul { out: DType::BF16 }.into();
            let mut s = 0.0;
            be.host_scope(&mut || s = median_seconds(&op, &[&x, &w]));
            println!("bf16 pair m {m:4} n {n:5} k {k:5}: {:9.2} us", s * 1e6);
        }
        if std::env::var_os("GEMM_COLD_SHAPES").is_some() {
            cold_experts(&be, &mut rng);
        }
        return;
    }
    for (m, n, k) in [
        (128, 1024, 1024),
        (128, 2633, 1024),
        (128, 1024, 2633),
        (512, 1024, 1024),
        (12, 512, 1024),
        (12, 1024, 512),
        (16, 292, 1024),
        (13, 1024, 292),
    ] {
        let flops = (2 * m * n * k) as f64;
        // x not made of bf16 values (the pair-dot tier refuses it: the f32 kernel runs), then
        // BF16-valued, as the model's activations are (the pair-dot tier where the CPU has it).
        let w = bf16s(&be, &[n, k], &rng.vec_bf16(n * k));
        for (tier, xv) in [("f32 ", rng.vec(m * k)), ("pair", rng.vec_bf16(m * k))] {
            if pair_only && tier != "pair" {
                continue;
            }
            let x = f32s(&be, &[m, k], &xv);
            let op: Op = Matmul { out: DType::BF16 }.into();
            let s = median_seconds(&op, &[&x, &w]);
            println!(
                "bf16 {tier} m {m:4} n {n:5} k {k:5}: {:9.1} us {:6.1} GFLOP/s",
                s * 1e6,
                flops / s / 1e9
            );
        }
        let kb = k.div_ceil(128);
        let codes: Vec<u8> = (0..n * k).map(|i| (i * 37 % 251) as u8 & 0x7E).collect();
        let xq: Vec<u8> = (0..m * k).map(|i| (i * 11 % 251) as u8 & 0x7E).collect();
        // One NaN code in x makes the pair-dot tier refuse the op (the f32 kernel runs).
        let mut xq_nan = xq.clone();
        xq_nan[0] = 0x7F;
        for (tier, xq) in [("f32 ", &xq_nan), ("pair", &xq)] {
            if pair_only && tier != "pair" {
                continue;
            }
            let ins = [
                e4m3s(&be, &[m, k], xq),
                f32s(&be, &[m, kb], &vec![0.01; m * kb]),
                e4m3s(&be, &[n, k], &codes),
                f32s(
                    &be,
                    &[n.div_ceil(128), kb],
                    &vec![0.001; n.div_ceil(128) * kb],
                ),
            ];
            let refs: Vec<&T> = ins.iter().collect();
            let op: Op = BlockFp8Matmul {
                block: [128, 128],
                out: DType::BF16,
            }
            .into();
            let s = median_seconds(&op, &refs);
            println!(
                "fp8  {tier} m {m:4} n {n:5} k {k:5}: {:9.1} us {:6.1} GFLOP/s",
                s * 1e6,
                flops / s / 1e9
            );
        }
    }
    cold_experts(&be, &mut rng);
}

/// A routed expert's projections as the model meets them: 64 different [n, k] BF16 weights
/// (more bytes than the last-level cache), each met once by m rows of x in turn, so every
/// weight comes from memory. Prints the mean time per projection.
fn cold_experts(be: &std::sync::Arc<dyn concord_ops::Backend>, rng: &mut Rng) {
    const EXPERTS: usize = 64;
    // GEMM_COLD_SHAPES="m,n,k;…" times those shapes instead.
    let shapes: Vec<[usize; 3]> =
        env_shapes("GEMM_COLD_SHAPES").unwrap_or(vec![[16, 292, 1024], [16, 1024, 292]]);
    for [m, n, k] in shapes {
        let ws: Vec<T> = (0..EXPERTS)
            .map(|_| bf16s(be, &[n, k], &rng.vec_bf16(n * k)))
            .collect();
        let x = f32s(be, &[m, k], &rng.vec_bf16(m * k));
        let op: Op = Matmul { out: DType::BF16 }.into();
        let out = be.alloc(m * n * 2).unwrap();
        let out_arg = [concord_ops::TensorArg::new(&out, DType::BF16, vec![m, n])];
        let mut rounds = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            for w in &ws {
                be.run(&op, &[x.arg(), w.arg()], &out_arg).unwrap();
            }
            rounds.push(t.elapsed().as_secs_f64() / EXPERTS as f64);
        }
        rounds.sort_by(f64::total_cmp);
        let s = rounds[rounds.len() / 2];
        println!(
            "bf16 cold m {m:4} n {n:5} k {k:5}: {:9.1} us {:6.1} GFLOP/s",
            s * 1e6,
            (2 * m * n * k) as f64 / s / 1e9
        );
    }
}
