//! moe_experts against the same computation composed from single ops.
mod common;

use common::*;
use concord_core::convert::round_to_bf16;
use concord_core::DType;
use concord_ops::{
    ActScaleFormat, BlockFp8Matmul, ExpertWeights, Fp8ActQuant, Matmul, MoeExperts, Swiglu,
};

const T_: usize = 5;
const H: usize = 200;
const I: usize = 136;
const E: usize = 4;
const K: usize = 2;

struct Data {
    x: Vec<f32>,
    ids: Vec<u32>,
    w: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
}

fn data(seed: u64) -> Data {
    let mut rng = Rng::new(seed);
    let ids: Vec<u32> = (0..T_ * K).map(|i| ((i * 3 + i / K) % E) as u32).collect();
    Data {
        x: rng.vec_bf16(T_ * H),
        ids,
        w: (0..T_ * K).map(|_| rng.uniform(0.1, 1.5)).collect(),
        gate: rng
            .vec_bf16(E * I * H)
            .iter()
            .map(|v| round_to_bf16(v * 0.2))
            .collect(),
        up: rng
            .vec_bf16(E * I * H)
            .iter()
            .map(|v| round_to_bf16(v * 0.2))
            .collect(),
        down: rng
            .vec_bf16(E * H * I)
            .iter()
            .map(|v| round_to_bf16(v * 0.2))
            .collect(),
    }
}

/// y = A(Σ_k w·eo_k) with eo_k from `expert(t, e)`, in rank order from +0.0.
fn combine(d: &Data, out: DType, expert: impl Fn(usize, usize) -> Vec<f32>) -> Vec<u32> {
    let mut res = Vec::new();
    for t in 0..T_ {
        let mut y = vec![0.0f32; H];
        for k in 0..K {
            let eo = expert(t, d.ids[t * K + k] as usize);
            for j in 0..H {
                y[j] += d.w[t * K + k] * eo[j];
            }
        }
        res.extend(y.iter().map(|v| {
            if out == DType::BF16 {
                round_to_bf16(*v)
            } else {
                *v
            }
            .to_bits()
        }));
    }
    res
}

#[test]
fn moe_experts_dense_equals_composed_ops() {
    let be = backend();
    let d = data(70);
    for (wdt, out) in [
        (DType::BF16, DType::BF16),
        (DType::F32, DType::F32),
        (DType::BF16, DType::F32),
    ] {
        let ins = [
            act(&be, out, &[T_, H], &d.x),
            u32s(&be, &[T_, K], &d.ids),
            f32s(&be, &[T_, K], &d.w),
            act(&be, wdt, &[E, I, H], &d.gate),
            act(&be, wdt, &[E, I, H], &d.up),
            act(&be, wdt, &[E, H, I], &d.down),
        ];
        let refs: Vec<&T> = ins.iter().collect();
        let got = run1(
            &be,
            MoeExperts {
                weights: ExpertWeights::Dense,
                out,
            },
            &refs,
        )
        .bits();
        let want = combine(&d, out, |t, e| {
            let xt = act(&be, out, &[1, H], &d.x[t * H..(t + 1) * H]);
            let g = act(&be, wdt, &[I, H], &d.gate[e * I * H..(e + 1) * I * H]);
            let u = act(&be, wdt, &[I, H], &d.up[e * I * H..(e + 1) * I * H]);
            let dn = act(&be, wdt, &[H, I], &d.down[e * H * I..(e + 1) * H * I]);
            let gy = run1(&be, Matmul { out }, &[&xt, &g]).f32();
            let uy = run1(&be, Matmul { out }, &[&xt, &u]).f32();
            let h = run1(
                &be,
                Swiglu { out },
                &[&act(&be, out, &[1, I], &gy), &act(&be, out, &[1, I], &uy)],
            )
            .f32();
            run1(&be, Matmul { out }, &[&act(&be, out, &[1, I], &h), &dn]).f32()
        });
        assert_eq!(got, want, "weights {wdt}, out {out}");
    }
}

#[test]
fn moe_experts_fp8_equals_composed_ops() {
    let plain = moe_experts_fp8_and_composed_ops(ActScaleFormat::F32);
    let ue8m0 = moe_experts_fp8_and_composed_ops(ActScaleFormat::Ue8m0);
    assert_eq!(plain.0, plain.1, "f32 activation scales");
    assert_eq!(ue8m0.0, ue8m0.1, "ue8m0 activation scales");
    // The format reaches the experts' quantization: power-of-two scales change the result.
    assert_ne!(plain.0, ue8m0.0);
}

/// moe_experts with FP8 weights and activation scales in `scale_fmt`, and the same experts
/// composed from fp8_act_quant, block_fp8_matmul and swiglu: (op bits, composed bits).
fn moe_experts_fp8_and_composed_ops(scale_fmt: ActScaleFormat) -> (Vec<u32>, Vec<u32>) {
    let be = backend();
    let d = data(71);
    let mut rng = Rng::new(72);
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
        code(&mut rng, E * I * H),
        code(&mut rng, E * I * H),
        code(&mut rng, E * H * I),
    );
    let sc = |rng: &mut Rng, n: usize| -> Vec<f32> {
        (0..n).map(|_| rng.uniform(0.001, 0.01)).collect()
    };
    let (gs, us, ds) = (
        sc(&mut rng, E * 4),
        sc(&mut rng, E * 4),
        sc(&mut rng, E * 4),
    );
    let out = DType::BF16;
    let op = MoeExperts {
        weights: ExpertWeights::BlockFp8 {
            block: [128, 128],
            scale_fmt,
        },
        out,
    };
    let ins = [
        bf16s(&be, &[T_, H], &d.x),
        u32s(&be, &[T_, K], &d.ids),
        f32s(&be, &[T_, K], &d.w),
        e4m3s(&be, &[E, I, H], &gq),
        f32s(&be, &[E, 2, 2], &gs),
        e4m3s(&be, &[E, I, H], &uq),
        f32s(&be, &[E, 2, 2], &us),
        e4m3s(&be, &[E, H, I], &dq),
        f32s(&be, &[E, 2, 2], &ds),
    ];
    let refs: Vec<&T> = ins.iter().collect();
    let got = run1(&be, op, &refs).bits();
    let fp8 = |x: &T, w: &[u8], s: &[f32], rows: usize, cols: usize| -> Vec<f32> {
        let q = run(&be, Fp8ActQuant { scale_fmt }, &[x]).unwrap();
        let xq = e4m3s(&be, &[1, cols], &q[0].bytes);
        let xs = f32s(&be, &[1, cols.div_ceil(128)], &q[1].f32());
        let wt = e4m3s(&be, &[rows, cols], w);
        let st = f32s(&be, &[2, 2], s);
        run1(
            &be,
            BlockFp8Matmul {
                block: [128, 128],
                out,
            },
            &[&xq, &xs, &wt, &st],
        )
        .f32()
    };
    let want = combine(&d, out, |t, e| {
        let xt = bf16s(&be, &[1, H], &d.x[t * H..(t + 1) * H]);
        let gy = fp8(
            &xt,
            &gq[e * I * H..(e + 1) * I * H],
            &gs[e * 4..(e + 1) * 4],
            I,
            H,
        );
        let uy = fp8(
            &xt,
            &uq[e * I * H..(e + 1) * I * H],
            &us[e * 4..(e + 1) * 4],
            I,
            H,
        );
        let h = run1(
            &be,
            Swiglu { out },
            &[&bf16s(&be, &[1, I], &gy), &bf16s(&be, &[1, I], &uy)],
        )
        .f32();
        fp8(
            &bf16s(&be, &[1, I], &h),
            &dq[e * H * I..(e + 1) * H * I],
            &ds[e * 4..(e + 1) * 4],
            H,
            I,
        )
    });
    (got, want)
}

#[test]
fn moe_experts_rejects_expert_id_out_of_range() {
    let be = backend();
    let d = data(73);
    let mut ids = d.ids.clone();
    ids[3] = E as u32;
    let ins = [
        bf16s(&be, &[T_, H], &d.x),
        u32s(&be, &[T_, K], &ids),
        f32s(&be, &[T_, K], &d.w),
        bf16s(&be, &[E, I, H], &d.gate),
        bf16s(&be, &[E, I, H], &d.up),
        bf16s(&be, &[E, H, I], &d.down),
    ];
    let refs: Vec<&T> = ins.iter().collect();
    let r = run(
        &be,
        MoeExperts {
            weights: ExpertWeights::Dense,
            out: DType::BF16,
        },
        &refs,
    );
    assert!(matches!(r, Err(concord_core::Error::InvalidArgument(_))));
}
