//! moe_experts when the experts' groups are uneven: a hot expert every token uses (its group
//! split across tasks), experts with no rows, all tokens to one expert, one token (decode),
//! more tokens than one chunk. Dense weights against a scalar expert written from the spec
//! and docs/numerics.md §4; FP8 weights against the same experts composed from single ops.
mod common;

use common::*;
use concord_core::convert::round_to_bf16;
use concord_core::numerics::math::silu;
use concord_core::DType;
use concord_ops::{ActScaleFormat, BlockFp8Matmul, ExpertWeights, Fp8ActQuant, MoeExperts, Swiglu};

/// The contract's sum of `terms`: concord_core's literal reference (docs/numerics.md §4).
fn canonical_sum(terms: &[f32]) -> f32 {
    concord_core::numerics::reduce::canonical_sum(terms.len(), |i| terms[i])
}

fn store(v: f32, out: DType) -> f32 {
    if out == DType::BF16 {
        round_to_bf16(v)
    } else {
        v
    }
}

/// `A(x · Wᵀ)` for one row x and W [rows, x.len()].
fn project(x: &[f32], w: &[f32], out: DType) -> Vec<f32> {
    w.chunks(x.len())
        .map(|row| {
            let terms: Vec<f32> = x.iter().zip(row).map(|(a, b)| a * b).collect();
            store(canonical_sum(&terms), out)
        })
        .collect()
}

struct Routing {
    t: usize,
    k: usize,
    ids: Vec<u32>,
}

const H: usize = 136;
const I: usize = 24;
const EXPERTS: usize = 6;

/// Token counts and routings: a hot expert 0 and an unused expert 5 over 300 tokens (more
/// than a 256-token chunk), all of 40 tokens to expert 2, and one token on six experts.
fn routings() -> Vec<Routing> {
    let hot: Vec<u32> = (0..300u32).flat_map(|t| [0, 1 + t % 3, 4]).collect();
    vec![
        Routing {
            t: 300,
            k: 3,
            ids: hot,
        },
        Routing {
            t: 40,
            k: 1,
            ids: vec![2; 40],
        },
        Routing {
            t: 1,
            k: 6,
            ids: vec![3, 0, 5, 1, 4, 2],
        },
    ]
}

/// y = A(Σ_k w·eo_k) in rank order from +0.0, eo from `expert(token, e)`.
fn combine(
    r: &Routing,
    w: &[f32],
    out: DType,
    expert: impl Fn(usize, usize) -> Vec<f32>,
) -> Vec<u32> {
    let mut res = Vec::new();
    for t in 0..r.t {
        let mut y = vec![0.0f32; H];
        for k in 0..r.k {
            let eo = expert(t, r.ids[t * r.k + k] as usize);
            for (a, v) in y.iter_mut().zip(&eo) {
                *a += w[t * r.k + k] * v;
            }
        }
        res.extend(y.iter().map(|v| store(*v, out).to_bits()));
    }
    res
}

#[test]
fn moe_experts_uneven_groups_dense() {
    let be = backend();
    let mut rng = Rng::new(90);
    let e = EXPERTS;
    let gate: Vec<f32> = rng
        .vec_bf16(e * I * H)
        .iter()
        .map(|v| round_to_bf16(v * 0.2))
        .collect();
    let up: Vec<f32> = rng
        .vec_bf16(e * I * H)
        .iter()
        .map(|v| round_to_bf16(v * 0.2))
        .collect();
    let down: Vec<f32> = rng
        .vec_bf16(e * H * I)
        .iter()
        .map(|v| round_to_bf16(v * 0.2))
        .collect();
    for r in routings() {
        let x = rng.vec_bf16(r.t * H);
        let w: Vec<f32> = (0..r.t * r.k).map(|_| rng.uniform(0.1, 1.5)).collect();
        for out in [DType::BF16, DType::F32] {
            let ins = [
                act(&be, out, &[r.t, H], &x),
                u32s(&be, &[r.t, r.k], &r.ids),
                f32s(&be, &[r.t, r.k], &w),
                bf16s(&be, &[e, I, H], &gate),
                bf16s(&be, &[e, I, H], &up),
                bf16s(&be, &[e, H, I], &down),
            ];
            let refs: Vec<&T> = ins.iter().collect();
            let op = MoeExperts {
                weights: ExpertWeights::Dense,
                out,
            };
            let got = run1(&be, op, &refs).bits();
            let want = combine(&r, &w, out, |t, ex| {
                let xt = &x[t * H..(t + 1) * H];
                let g = project(xt, &gate[ex * I * H..(ex + 1) * I * H], out);
                let u = project(xt, &up[ex * I * H..(ex + 1) * I * H], out);
                let h: Vec<f32> = g
                    .iter()
                    .zip(&u)
                    .map(|(g, u)| store(silu(*g) * u, out))
                    .collect();
                project(&h, &down[ex * H * I..(ex + 1) * H * I], out)
            });
            assert_eq!(got, want, "{} tokens, k {}, out {out}", r.t, r.k);
        }
    }
}

#[test]
fn moe_experts_uneven_groups_fp8() {
    let be = backend();
    let mut rng = Rng::new(91);
    let e = EXPERTS;
    let code = |rng: &mut Rng, n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| loop {
                let b = rng.below(256) as u8;
                if b & 0x7F != 0x7F && b & 0x78 < 0x50 {
                    break b;
                }
            })
            .collect()
    };
    let (gq, uq, dq) = (
        code(&mut rng, e * I * H),
        code(&mut rng, e * I * H),
        code(&mut rng, e * H * I),
    );
    // Scales [E, ⌈rows/128⌉, ⌈cols/128⌉]: gate and up [E, 1, 2], down [E, 2, 1].
    let sc = |rng: &mut Rng| -> Vec<f32> { (0..e * 2).map(|_| rng.uniform(0.001, 0.01)).collect() };
    let (gs, us, ds) = (sc(&mut rng), sc(&mut rng), sc(&mut rng));
    let out = DType::BF16;
    let scale_fmt = ActScaleFormat::F32;
    let fp8 = |x: &[f32], w: &[u8], s: &[f32], rows: usize, cols: usize| -> Vec<f32> {
        let q = run(
            &be,
            Fp8ActQuant { scale_fmt },
            &[&bf16s(&be, &[1, cols], x)],
        )
        .unwrap();
        let xq = e4m3s(&be, &[1, cols], &q[0].bytes);
        let xs = f32s(&be, &[1, cols.div_ceil(128)], &q[1].f32());
        let wt = e4m3s(&be, &[rows, cols], w);
        let st = f32s(&be, &[rows.div_ceil(128), cols.div_ceil(128)], s);
        let op = BlockFp8Matmul {
            block: [128, 128],
            out,
        };
        run1(&be, op, &[&xq, &xs, &wt, &st]).f32()
    };
    for r in routings()
        .into_iter()
        .skip(1)
        .chain(routings().into_iter().take(1))
    {
        // The hot routing's first 260 tokens suffice to cross the chunk.
        let r = Routing {
            t: r.t.min(260),
            ids: r.ids[..r.t.min(260) * r.k].to_vec(),
            ..r
        };
        let x = rng.vec_bf16(r.t * H);
        let w: Vec<f32> = (0..r.t * r.k).map(|_| rng.uniform(0.1, 1.5)).collect();
        let ins = [
            bf16s(&be, &[r.t, H], &x),
            u32s(&be, &[r.t, r.k], &r.ids),
            f32s(&be, &[r.t, r.k], &w),
            e4m3s(&be, &[e, I, H], &gq),
            f32s(&be, &[e, 1, 2], &gs),
            e4m3s(&be, &[e, I, H], &uq),
            f32s(&be, &[e, 1, 2], &us),
            e4m3s(&be, &[e, H, I], &dq),
            f32s(&be, &[e, 2, 1], &ds),
        ];
        let refs: Vec<&T> = ins.iter().collect();
        let op = MoeExperts {
            weights: ExpertWeights::BlockFp8 {
                block: [128, 128],
                scale_fmt,
            },
            out,
        };
        let got = run1(&be, op, &refs).bits();
        let want = combine(&r, &w, out, |t, ex| {
            let xt = &x[t * H..(t + 1) * H];
            let g = fp8(
                xt,
                &gq[ex * I * H..(ex + 1) * I * H],
                &gs[ex * 2..ex * 2 + 2],
                I,
                H,
            );
            let u = fp8(
                xt,
                &uq[ex * I * H..(ex + 1) * I * H],
                &us[ex * 2..ex * 2 + 2],
                I,
                H,
            );
            let h = run1(
                &be,
                Swiglu { out },
                &[&bf16s(&be, &[1, I], &g), &bf16s(&be, &[1, I], &u)],
            )
            .f32();
            fp8(
                &h,
                &dq[ex * H * I..(ex + 1) * H * I],
                &ds[ex * 2..ex * 2 + 2],
                H,
                I,
            )
        });
        assert_eq!(got, want, "fp8: {} tokens, k {}", r.t, r.k);
    }
}
