//! Decode GEMV speed with weights not in cache, a benchmark rather than a test
//! (`cargo bench -p concord-backend-cpu --bench gemv_cold`): matmul with one row of x over
//! many distinct BF16 weights of one shape, each used once per pass (as a decode step uses
//! each weight once), both tiers in turn: x not made of bf16 values (the f32 kernel) and
//! BF16-valued x (the pair-dot tier where the CPU has AVX512-BF16). `gemv_speed`'s repeated
//! calls keep small weights in cache and hid a kernel that streamed cold weights at a third
//! of the speed. Then the same for block-FP8 weights (e4m3 codes, the decode of `fp8` mode),
//! and one FP8 case small enough to stay in cache (compute speed); `GEMV_COLD_FP8_ONLY=1`
//! skips the BF16 cases.
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use concord_core::DType;
use concord_ops::{BlockFp8Matmul, Matmul, Op, TensorArg};

/// Passes over all the weights that are timed (after one untimed pass).
const PASSES: usize = 5;

fn main() {
    let be = backend();
    let mut rng = Rng::new(5);
    println!("threads {}", rayon::current_num_threads());
    let bf16 = std::env::var_os("GEMV_COLD_FP8_ONLY").is_none();
    let custom: Option<Vec<(usize, usize, usize)>> = env_shapes::<2>("GEMV_COLD_SHAPES").map(|v| {
        v.into_iter()
            .map(|[n, k]| (n, k, (64 << 20) / (n * k)))
            .collect()
    });
    for (n, k, count) in custom
        .clone()
        .unwrap_or(vec![
            (1024, 1024, 64),
            (3072, 1024, 24),
            (64, 1024, 256),
            (1024, 512, 96),
        ])
        .into_iter()
        .filter(|_| bf16)
    {
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
                let s = seconds_per_call(pass, count);
                println!(
                    "round {round} bf16 {tier} cold gemv n {n:5} k {k:5}: {:8.1} us {:5.1} GB/s",
                    s * 1e6,
                    (n * k * 2) as f64 / s / 1e9
                );
            }
        }
    }
    for (n, k, count) in custom.unwrap_or(vec![
        (1024usize, 1024usize, 64usize),
        (3072, 1024, 24),
        (1024, 2048, 32),
        (256, 1024, 2),
    ]) {
        let kb = k.div_ceil(128);
        let ws: Vec<(T, T)> = (0..count)
            .map(|_| {
                let w = e4m3s(&be, &[n, k], &rng.e4m3_codes(n * k));
                let s = f32s(
                    &be,
                    &[n.div_ceil(128), kb],
                    &vec![0.001; n.div_ceil(128) * kb],
                );
                (w, s)
            })
            .collect();
        let xq = e4m3s(&be, &[1, k], &rng.e4m3_codes(k));
        let xs = f32s(&be, &[1, kb], &vec![0.5; kb]);
        let op: Op = BlockFp8Matmul {
            block: [128, 128],
            out: DType::BF16,
        }
        .into();
        let out = be.alloc(n * 2).unwrap();
        let out_arg = TensorArg::new(&out, DType::BF16, vec![1, n]);
        let pass = || {
            for (w, s) in &ws {
                be.run(
                    &op,
                    &[xq.arg(), xs.arg(), w.arg(), s.arg()],
                    std::slice::from_ref(&out_arg),
                )
                .unwrap();
            }
        };
        for round in 0..2 {
            let s = seconds_per_call(pass, count);
            println!(
                "round {round} fp8  pair cold gemv n {n:5} k {k:5}: {:8.1} us {:5.1} GB/s",
                s * 1e6,
                (n * k) as f64 / s / 1e9
            );
        }
    }
}

/// Seconds per call of `pass` (`calls` calls each), timed over [`PASSES`] after one untimed.
fn seconds_per_call(pass: impl Fn(), calls: usize) -> f64 {
    pass();
    let t = Instant::now();
    for _ in 0..PASSES {
        pass();
    }
    t.elapsed().as_secs_f64() / (PASSES * calls) as f64
}
