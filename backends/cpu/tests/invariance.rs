//! A row's result does not depend on the batch around it, its position in the batch, or the
//! number of threads.
mod common;

use common::*;
use concord_core::DType;
use concord_ops::{BlockFp8Matmul, ExpertWeights, Matmul, MlaDecode, MoeExperts, Op, RmsNorm};

/// Runs a row-wise op on `rows` rows of `x` (width k) with the other inputs fixed, returning
/// output bits per row.
fn per_row(op: &Op, x: &[f32], k: usize, xdt: DType, rest: &[&T]) -> Vec<Vec<u32>> {
    let be = backend();
    let m = x.len() / k;
    let xt = act(&be, xdt, &[m, k], x);
    let mut ins = vec![&xt];
    ins.extend_from_slice(rest);
    let bits = run(&be, op.clone(), &ins).unwrap().swap_remove(0).bits();
    let n = bits.len() / m;
    bits.chunks(n).map(|c| c.to_vec()).collect()
}

/// Checks that row r of `pool` gives the same bits alone and at every position inside
/// batches of 1, 3 and 8 rows drawn from the pool.
fn check_batch_invariance(op: Op, pool: &[f32], k: usize, xdt: DType, rest: &[&T]) {
    let rows = pool.len() / k;
    let alone: Vec<Vec<u32>> = (0..rows)
        .map(|r| per_row(&op, &pool[r * k..(r + 1) * k], k, xdt, rest).remove(0))
        .collect();
    for size in [1, 3, 8] {
        for start in 0..rows {
            let picks: Vec<usize> = (0..size).map(|i| (start + i * 5) % rows).collect();
            let x: Vec<f32> = picks
                .iter()
                .flat_map(|&r| pool[r * k..(r + 1) * k].iter().copied())
                .collect();
            let got = per_row(&op, &x, k, xdt, rest);
            for (pos, &r) in picks.iter().enumerate() {
                assert_eq!(
                    got[pos], alone[r],
                    "{op:?}: row {r} at position {pos} of {size}"
                );
            }
        }
    }
}

#[test]
fn batch_invariance_matmul() {
    let be = backend();
    let mut rng = Rng::new(100);
    let (k, n) = (300, 70);
    let pool = rng.vec_bf16(9 * k);
    let w = bf16s(&be, &[n, k], &rng.vec_bf16(n * k));
    check_batch_invariance(
        Matmul { out: DType::BF16 }.into(),
        &pool,
        k,
        DType::BF16,
        &[&w],
    );
    let w = f32s(&be, &[n, k], &rng.vec(n * k));
    check_batch_invariance(
        Matmul { out: DType::F32 }.into(),
        &pool,
        k,
        DType::F32,
        &[&w],
    );
}

#[test]
fn batch_invariance_rms_norm() {
    let be = backend();
    let mut rng = Rng::new(101);
    let d = 520;
    let pool = rng.vec_bf16(9 * d);
    let w = bf16s(&be, &[d], &rng.vec_bf16(d));
    check_batch_invariance(
        RmsNorm {
            eps: 1e-6,
            out: DType::BF16,
        }
        .into(),
        &pool,
        d,
        DType::BF16,
        &[&w],
    );
}

struct Moe {
    ins: Vec<T>,
}

const H: usize = 136;
const I: usize = 64;
const E: usize = 6;
const K: usize = 3;

fn moe(seed: u64) -> Moe {
    let be = backend();
    let mut rng = Rng::new(seed);
    Moe {
        ins: vec![
            bf16s(&be, &[E, I, H], &rng.vec_bf16(E * I * H)),
            bf16s(&be, &[E, I, H], &rng.vec_bf16(E * I * H)),
            bf16s(&be, &[E, H, I], &rng.vec_bf16(E * H * I)),
        ],
    }
}

#[test]
fn batch_invariance_moe_experts() {
    // Each token's routing is a function of the token, so rows stay self-contained.
    let be = backend();
    let mut rng = Rng::new(102);
    let m = moe(103);
    let rows = 9;
    let pool = rng.vec_bf16(rows * H);
    let op: Op = MoeExperts {
        weights: ExpertWeights::Dense,
        out: DType::BF16,
    }
    .into();
    let route = |x: &[f32]| -> (Vec<u32>, Vec<f32>) {
        let mut ids = Vec::new();
        let mut w = Vec::new();
        for row in x.chunks(H) {
            let h = row.iter().map(|v| v.to_bits() as usize).sum::<usize>();
            for k in 0..K {
                ids.push(((h / 7 + k * 2) % E) as u32);
                w.push(0.25 + k as f32 * 0.5);
            }
        }
        (ids, w)
    };
    let run_rows = |x: &[f32]| -> Vec<Vec<u32>> {
        let t = x.len() / H;
        let (ids, w) = route(x);
        let ins = [
            bf16s(&be, &[t, H], x),
            u32s(&be, &[t, K], &ids),
            f32s(&be, &[t, K], &w),
        ];
        let all: Vec<&T> = ins.iter().chain(m.ins.iter()).collect();
        run1(&be, op.clone(), &all)
            .bits()
            .chunks(H)
            .map(|c| c.to_vec())
            .collect()
    };
    let alone: Vec<Vec<u32>> = (0..rows)
        .map(|r| run_rows(&pool[r * H..(r + 1) * H]).remove(0))
        .collect();
    for size in [1, 3, 8] {
        for start in 0..rows {
            let picks: Vec<usize> = (0..size).map(|i| (start + i * 4) % rows).collect();
            let x: Vec<f32> = picks
                .iter()
                .flat_map(|&r| pool[r * H..(r + 1) * H].iter().copied())
                .collect();
            for (pos, got) in run_rows(&x).iter().enumerate() {
                assert_eq!(
                    got, &alone[picks[pos]],
                    "row {} at {pos} of {size}",
                    picks[pos]
                );
            }
        }
    }
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn thread_count_invariance() {
    let be = backend();
    let mut rng = Rng::new(104);
    // Shapes large enough that every op splits into many parallel tasks.
    let (m, k, n) = (5, 700, 300);
    let x = bf16s(&be, &[m, k], &rng.vec_bf16(m * k));
    let x1 = bf16s(&be, &[1, k], &rng.vec_bf16(k));
    let w = bf16s(&be, &[n, k], &rng.vec_bf16(n * k));
    let codes: Vec<u8> = (0..n * k)
        .map(|_| (rng.below(0x70) as u8) | if rng.below(2) == 0 { 0x80 } else { 0 })
        .collect();
    let xq: Vec<u8> = (0..m * k).map(|_| rng.below(0x70) as u8).collect();
    let wq = e4m3s(&be, &[n, k], &codes);
    let xqt = e4m3s(&be, &[m, k], &xq);
    let xs = f32s(
        &be,
        &[m, 6],
        &(0..m * 6)
            .map(|_| rng.uniform(0.01, 0.1))
            .collect::<Vec<_>>(),
    );
    let ws = f32s(
        &be,
        &[3, 6],
        &(0..18).map(|_| rng.uniform(0.01, 0.1)).collect::<Vec<_>>(),
    );
    let (t, nh, dn, dv, dr, r, s) = (2, 8, 32, 32, 16, 128, 40);
    let mla = [
        bf16s(&be, &[t, nh, dn + dr], &rng.vec_bf16(t * nh * (dn + dr))),
        bf16s(&be, &[t, nh, dr], &rng.vec_bf16(t * nh * dr)),
        bf16s(&be, &[nh * (dn + dv), r], &rng.vec_bf16(nh * (dn + dv) * r)),
        bf16s(&be, &[s, r], &rng.vec_bf16(s * r)),
        bf16s(&be, &[s, dr], &rng.vec_bf16(s * dr)),
        u32s(&be, &[t], &[20, 39]),
    ];
    let mm = moe(105);
    let ids: Vec<u32> = (0..m * K).map(|i| (i % E) as u32).collect();
    let moe_in = [
        u32s(&be, &[m, K], &ids),
        f32s(&be, &[m, K], &vec![0.5; m * K]),
    ];
    let all = || -> Vec<Vec<u32>> {
        let mut out = vec![
            run1(&be, Matmul { out: DType::BF16 }, &[&x, &w]).bits(),
            run1(&be, Matmul { out: DType::F32 }, &[&x1, &w]).bits(),
            run1(
                &be,
                BlockFp8Matmul {
                    block: [128, 128],
                    out: DType::F32,
                },
                &[&xqt, &xs, &wq, &ws],
            )
            .bits(),
        ];
        let refs: Vec<&T> = mla.iter().collect();
        out.push(
            run1(
                &be,
                MlaDecode {
                    nope_dim: dn,
                    v_dim: dv,
                    scale: 0.2,
                    out: DType::F32,
                },
                &refs,
            )
            .bits(),
        );
        let xe = bf16s(&be, &[m, H], &Rng::new(106).vec_bf16(m * H));
        let mut refs: Vec<&T> = vec![&xe, &moe_in[0], &moe_in[1]];
        refs.extend(mm.ins.iter());
        out.push(
            run1(
                &be,
                MoeExperts {
                    weights: ExpertWeights::Dense,
                    out: DType::BF16,
                },
                &refs,
            )
            .bits(),
        );
        out
    };
    let one = in_pool(1, all);
    let two = in_pool(2, all);
    let three = in_pool(3, all);
    assert_eq!(one, two);
    assert_eq!(one, three);
}
