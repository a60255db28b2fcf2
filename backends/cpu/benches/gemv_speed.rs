//! Decode GEMV speed, a benchmark rather than a test
//! (`cargo bench -p concord-backend-cpu --bench gemv_speed`).
//! Prints the median time of matmul / block_fp8_matmul with one row of x over V3-like
//! weight shapes and the weight bytes read per second. Called from the test thread, outside
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
    while times.len() < 15 || (start.elapsed().as_secs_f64() < 0.5 && times.len() < 2000) {
        let t = Instant::now();
        be.run(op, &in_args, &out_args).unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let be = backend();
    let mut rng = Rng::new(50);
    println!("threads {}", rayon::current_num_threads());
    for (n, k) in [
        (64, 1792),
        (512, 1792),
        (1792, 512),
        (2048, 7168),
        (12288, 7168),
    ] {
        // x not made of bf16 values (the pair-dot tier refuses it: the f32 kernel runs), then
        // BF16-valued, as the model's activations are (the pair-dot tier where the CPU has it).
        let w = bf16s(&be, &[n, k], &rng.vec_bf16(n * k));
        for (tier, xv) in [("f32 ", rng.vec(k)), ("pair", rng.vec_bf16(k))] {
            let x = f32s(&be, &[1, k], &xv);
            let op: Op = Matmul { out: DType::BF16 }.into();
            let s = median_seconds(&op, &[&x, &w]);
            let bytes = (n * k * 2) as f64;
            println!(
                "bf16 {tier} gemv n {n:5} k {k:5}: {:9.1} us {:6.1} GB/s",
                s * 1e6,
                bytes / s / 1e9
            );
        }
        let kb = k.div_ceil(128);
        let codes: Vec<u8> = (0..n * k).map(|i| (i * 37 % 251) as u8 & 0x7E).collect();
        let xq: Vec<u8> = (0..k).map(|i| (i * 11 % 251) as u8 & 0x7E).collect();
        // One NaN code in x makes the pair-dot tier refuse the op (the f32 kernel runs).
        let mut xq_nan = xq.clone();
        xq_nan[0] = 0x7F;
        for (tier, xq) in [("f32 ", &xq_nan), ("pair", &xq)] {
            let ins = [
                e4m3s(&be, &[1, k], xq),
                f32s(&be, &[1, kb], &vec![0.01; kb]),
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
            let bytes = (n * k) as f64;
            println!(
                "fp8  {tier} gemv n {n:5} k {k:5}: {:9.1} us {:6.1} GB/s",
                s * 1e6,
                bytes / s / 1e9
            );
        }
    }
}
