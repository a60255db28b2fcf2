//! Decode GEMV speed with weights not in cache, a benchmark rather than a test
//! (`cargo bench -p concord-backend-cpu --bench gemv_cold`): matmul with one row of x over
//! many distinct BF16 weights of one shape, each used once per pass (as a decode step uses
//! each weight once), both tiers in turn: x not made of bf16 values (the f32 kernel) and
//! BF16-valued x (the pair-dot tier where the CPU has AVX512-BF16). `gemv_speed`'s repeated
//! calls keep small weights in cache and hid a kernel that streamed cold weights at a third
//! of the speed.
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use concord_core::DType;
use concord_ops::{Matmul, Op, TensorArg};

/// Passes over all the weights that are timed (after one untimed pass).
const PASSES: usize = 5;

fn main() {
    let be = backend();
    let mut rng = Rng::new(5);
    println!("threads {}", rayon::current_num_threads());
    for (n, k, count) in [
        (1024, 1024, 64),
        (3072, 1024, 24),
        (64, 1024, 256),
        (1024, 512, 96),
    ] {
        let ws: Vec<T> = (0..count)
            .map(|_| bf16s(&be, &[n, k], &rng.vec_bf16(n * k)))
            .collect();
        let op: Op = Matmul { out: DType::BF16 }.into();
        let out = be.alloc(n * 2).unwrap();
        let out_arg = TensorArg::new(&out, DType::BF16, vec![1, n]);
        for round in 0..2 {
            for (tier, xv) in [("f32 ", rng.vec(k)), ("pair", rng.vec_bf16(k))] {
                let x = f32s(&be, &[1, k], &xv);
                let pass = || {
                    for w in &ws {
                        be.run(&op, &[x.arg(), w.arg()], std::slice::from_ref(&out_arg))
                            .unwrap();
                    }
                };
                pass();
                let t = Instant::now();
                for _ in 0..PASSES {
                    pass();
                }
                let s = t.elapsed().as_secs_f64() / (PASSES * count) as f64;
                println!(
                    "round {round} bf16 {tier} cold gemv n {n:5} k {k:5}: {:8.1} us {:5.1} GB/s",
                    s * 1e6,
                    (n * k * 2) as f64 / s / 1e9
                );
            }
        }
    }
}
