//! `mla_decode` at two models' shapes (BF16 weights and cache): a benchmark rather than a
//! test (`cargo bench -p concord-backend-cpu --bench mla_decode`). Calls run inside one
//! `host_scope`, as the executor runs a decode step.
//! - the side-by-side model (18 heads, Dn = Dv = 128, Dr = 64, latent rank 73), one decode
//!   row over a short and a long cache, weights and cache NOT in the CPU's caches (64 sets
//!   used in turn, ≈ 45 MB), as in its decode step;
//! - the bundled demo (4 heads, Dn = Dv = 32, Dr = 16, rank 64), one row and a speculative
//!   verification's five rows over 160 keys, everything in cache, as on that 2 MB model
//!   (MLA_DEMO_SHAPES="rows,keys;…" for others).
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use concord_core::DType;
use concord_ops::{MlaDecode, Op, TensorArg};

struct Shape {
    name: &'static str,
    heads: usize,
    nope: usize,
    rope: usize,
    v: usize,
    rank: usize,
    keys: usize,
    rows: usize,
    copies: usize,
}

const CALLS: usize = 400;

fn main() {
    let be = backend();
    let mut rng = Rng::new(11);
    println!("threads {}", rayon::current_num_threads());
    let big = |keys| Shape {
        name: "side-by-side, cold",
        heads: 18,
        nope: 128,
        rope: 64,
        v: 128,
        rank: 73,
        keys,
        rows: 1,
        copies: 64,
    };
    let demo = |rows, keys| Shape {
        name: "demo, in cache",
        heads: 4,
        nope: 32,
        rope: 16,
        v: 32,
        rank: 64,
        keys,
        rows,
        copies: 1,
    };
    // MLA_DEMO_SHAPES="rows,keys;…" times those demo shapes instead.
    let shapes: Vec<Shape> = match env_shapes::<2>("MLA_DEMO_SHAPES") {
        Some(list) => list
            .into_iter()
            .map(|[rows, keys]| demo(rows, keys))
            .collect(),
        None => vec![big(80), big(1100), demo(1, 160), demo(5, 160)],
    };
    for s in shapes {
        let (n, t) = (s.heads, s.rows);
        let q = f32s(
            &be,
            &[t, n, s.nope + s.rope],
            &rng.vec(t * n * (s.nope + s.rope)),
        );
        let q_pe = f32s(&be, &[t, n, s.rope], &rng.vec(t * n * s.rope));
        let sets: Vec<[T; 3]> = (0..s.copies)
            .map(|_| {
                let w = rng.vec_bf16(n * (s.nope + s.v) * s.rank);
                [
                    bf16s(&be, &[n * (s.nope + s.v), s.rank], &w),
                    bf16s(&be, &[s.keys, s.rank], &rng.vec_bf16(s.keys * s.rank)),
                    bf16s(&be, &[s.keys, s.rope], &rng.vec_bf16(s.keys * s.rope)),
                ]
            })
            .collect();
        // The rows' positions end at the cache's last key, one apart (draft rows).
        let positions: Vec<u32> = (0..t).map(|i| (s.keys - t + i) as u32).collect();
        let pos = u32s(&be, &[t], &positions);
        let op: Op = MlaDecode {
            nope_dim: s.nope,
            v_dim: s.v,
            scale: 0.07,
            out: DType::BF16,
        }
        .into();
        let out = be.alloc(t * n * s.v * 2).unwrap();
        let out_arg = TensorArg::new(&out, DType::BF16, vec![t, n, s.v]);
        for round in 0..3 {
            let mut seconds = 0.0;
            be.host_scope(&mut || {
                let start = Instant::now();
                for call in 0..CALLS {
                    let [w, latent, k_pe] = &sets[call % s.copies];
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
                seconds = start.elapsed().as_secs_f64() / CALLS as f64;
            });
            println!(
                "round {round} mla_decode {} keys {:5} rows {t}: {:7.2} us",
                s.name,
                s.keys,
                seconds * 1e6
            );
        }
    }
}
