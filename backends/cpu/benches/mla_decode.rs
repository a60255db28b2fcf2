//! `mla_decode` for one decode row at the side-by-side model's shapes (18 heads, Dn = Dv =
//! 128, Dr = 64, latent rank 73; BF16 weights and cache) over a short and a long cache: a
//! benchmark rather than a test (`cargo bench -p concord-backend-cpu --bench mla_decode`).
//! Calls run inside one `host_scope`, as the executor runs a decode step, each on weights and
//! a cache that are not in the CPU's caches.
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use concord_core::DType;
use concord_ops::{MlaDecode, Op, TensorArg};

const HEADS: usize = 18;
const NOPE: usize = 128;
const ROPE: usize = 64;
const V: usize = 128;
const RANK: usize = 73;
const CALLS: usize = 400;
const COPIES: usize = 64;

fn main() {
    let be = backend();
    let mut rng = Rng::new(11);
    println!("threads {}", rayon::current_num_threads());
    for keys in [80usize, 1100] {
        let q = f32s(
            &be,
            &[1, HEADS, NOPE + ROPE],
            &rng.vec(HEADS * (NOPE + ROPE)),
        );
        let q_pe = f32s(&be, &[1, HEADS, ROPE], &rng.vec(HEADS * ROPE));
        // COPIES weight and cache sets (≈ 45 MB) used in turn: each call finds them in memory,
        // not in cache, as in a decode step.
        let sets: Vec<[T; 3]> = (0..COPIES)
            .map(|_| {
                let w = rng.vec_bf16(HEADS * (NOPE + V) * RANK);
                [
                    bf16s(&be, &[HEADS * (NOPE + V), RANK], &w),
                    bf16s(&be, &[keys, RANK], &rng.vec_bf16(keys * RANK)),
                    bf16s(&be, &[keys, ROPE], &rng.vec_bf16(keys * ROPE)),
                ]
            })
            .collect();
        let pos = u32s(&be, &[1], &[keys as u32 - 1]);
        let op: Op = MlaDecode {
            nope_dim: NOPE,
            v_dim: V,
            scale: 0.07,
            out: DType::BF16,
        }
        .into();
        let out = be.alloc(HEADS * V * 2).unwrap();
        let out_arg = TensorArg::new(&out, DType::BF16, vec![1, HEADS, V]);
        for round in 0..3 {
            let mut seconds = 0.0;
            be.host_scope(&mut || {
                let t = Instant::now();
                for call in 0..CALLS {
                    let [w, latent, k_pe] = &sets[call % COPIES];
                    let ins = [
                        q.arg(),
                        q_pe.arg(),
                        w.arg(),
                        latent.arg(),
                        k_pe.arg(),
                        pos.arg(),
                    ];
                    be.run(&op, &ins, std::slice::from_ref(&out_arg)).unwrap();
                }
                seconds = t.elapsed().as_secs_f64() / CALLS as f64;
            });
            println!(
                "round {round} mla_decode keys {keys:5}: {:7.2} us",
                seconds * 1e6
            );
        }
    }
}
