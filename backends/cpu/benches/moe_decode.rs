//! Routed experts of one decode token (`moe_experts`, T = 1) with block-FP8 weights of the
//! side-by-side model's shape (E = 64, H = 1024, I = 292, top 8), every call a different
//! expert set so the weights (57 MiB) come from memory as in decode: a benchmark rather than
//! a test (`cargo bench -p concord-backend-cpu --bench moe_decode`; `MOE_DEMO_ROWS="1;4"`
//! times the demo's experts instead, `demo` below). Calls run inside one `host_scope`, as
//! the executor runs a decode step, so the time is the op's, not a hand-off's.
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use concord_core::{ActScaleFormat, DType};
use concord_ops::{ExpertWeights, MoeExperts, Op, TensorArg};

const E: usize = 64;
const H: usize = 1024;
const I: usize = 292;
const TOP: usize = 8;
const CALLS: usize = 200;

fn main() {
    let be = backend();
    let mut rng = Rng::new(7);
    if let Some(rows) = env_shapes::<1>("MOE_DEMO_ROWS") {
        return demo(&be, &mut rng, rows.iter().map(|[t]| *t));
    }
    let scales =
        |rows: usize, cols: usize| vec![0.01f32; E * rows.div_ceil(128) * cols.div_ceil(128)];
    let gate = e4m3s(&be, &[E, I, H], &rng.e4m3_codes(E * I * H));
    let up = e4m3s(&be, &[E, I, H], &rng.e4m3_codes(E * I * H));
    let down = e4m3s(&be, &[E, H, I], &rng.e4m3_codes(E * H * I));
    let gs = f32s(&be, &[E, I.div_ceil(128), H.div_ceil(128)], &scales(I, H));
    let us = f32s(&be, &[E, I.div_ceil(128), H.div_ceil(128)], &scales(I, H));
    let ds = f32s(&be, &[E, H.div_ceil(128), I.div_ceil(128)], &scales(H, I));
    let x = f32s(&be, &[1, H], &rng.vec_bf16(H));
    let w = f32s(&be, &[1, TOP], &[0.125; TOP]);
    let id_sets: Vec<T> = (0..CALLS)
        .map(|c| {
            let ids: Vec<u32> = (0..TOP).map(|r| ((c * TOP + r) * 7 % E) as u32).collect();
            u32s(&be, &[1, TOP], &ids)
        })
        .collect();
    let op: Op = MoeExperts {
        weights: ExpertWeights::BlockFp8 {
            block: [128, 128],
            scale_fmt: ActScaleFormat::F32,
        },
        out: DType::BF16,
    }
    .into();
    let out = be.alloc(H * 2).unwrap();
    let out_arg = TensorArg::new(&out, DType::BF16, vec![1, H]);
    let bytes = TOP * 3 * I * H;
    println!("threads {}", rayon::current_num_threads());
    for round in 0..3 {
        let t = mean_call_seconds(&be, &op, &id_sets, &out_arg, |ids| {
            vec![
                x.arg(),
                ids.arg(),
                w.arg(),
                gate.arg(),
                gs.arg(),
                up.arg(),
                us.arg(),
                down.arg(),
                ds.arg(),
            ]
        });
        println!(
            "round {round} moe_experts fp8 decode: {:7.1} us {:5.1} GB/s",
            t * 1e6,
            bytes as f64 / t / 1e9
        );
    }
}

/// The bundled demo's routed experts (E = 8, H = 128, I = 64, top 2, BF16, in cache) over
/// `T` rows at a time (`MOE_DEMO_ROWS="1;4"`: a decode step and a verification's 4 rows).
fn demo(
    be: &std::sync::Arc<dyn concord_ops::Backend>,
    rng: &mut Rng,
    rows: impl Iterator<Item = usize>,
) {
    const E: usize = 8;
    const H: usize = 128;
    const I: usize = 64;
    const TOP: usize = 2;
    let gate = bf16s(be, &[E, I, H], &rng.vec_bf16(E * I * H));
    let up = bf16s(be, &[E, I, H], &rng.vec_bf16(E * I * H));
    let down = bf16s(be, &[E, H, I], &rng.vec_bf16(E * H * I));
    let op: Op = MoeExperts {
        weights: ExpertWeights::Dense,
        out: DType::BF16,
    }
    .into();
    for t in rows {
        let x = f32s(be, &[t, H], &rng.vec_bf16(t * H));
        let w = f32s(be, &[t, TOP], &vec![0.5; t * TOP]);
        let id_sets: Vec<T> = (0..CALLS)
            .map(|c| {
                let ids: Vec<u32> = (0..t * TOP).map(|r| ((c * 3 + r * 5) % E) as u32).collect();
                u32s(be, &[t, TOP], &ids)
            })
            .collect();
        let out = be.alloc(t * H * 2).unwrap();
        let out_arg = TensorArg::new(&out, DType::BF16, vec![t, H]);
        for round in 0..3 {
            let seconds = mean_call_seconds(be, &op, &id_sets, &out_arg, |ids| {
                vec![
                    x.arg(),
                    ids.arg(),
                    w.arg(),
                    gate.arg(),
                    up.arg(),
                    down.arg(),
                ]
            });
            println!(
                "round {round} moe_experts demo rows {t}: {:7.2} us",
                seconds * 1e6
            );
        }
    }
}

/// The mean time of one `op` call over `id_sets` (one call each, the inputs from `ins`),
/// all calls inside one `host_scope`, as the executor runs a decode step.
fn mean_call_seconds<'a>(
    be: &std::sync::Arc<dyn concord_ops::Backend>,
    op: &Op,
    id_sets: &'a [T],
    out: &TensorArg,
    ins: impl Fn(&'a T) -> Vec<TensorArg<'a>> + Sync,
) -> f64 {
    let mut seconds = 0.0;
    be.host_scope(&mut || {
        let start = Instant::now();
        for ids in id_sets {
            be.run(op, &ins(ids), std::slice::from_ref(out)).unwrap();
        }
        seconds = start.elapsed().as_secs_f64() / id_sets.len() as f64;
    });
    seconds
}
