//! Fast mode on OpenCL (PoCL in CI): moe_experts with Dense BF16 weights as grouped GEMMs on
//! the work-group tiles (ops/fast/moe_experts.c) with the portable MMA step. Held against the
//! CPU exact output with the BF16 tolerance of docs/numerics.md §1 (NMSE ≤ 1e-4), and to the
//! fast-mode guarantees: bit-identical run to run, and a token's output row bit-identical
//! whether it runs alone or inside a batch. Shapes cover odd H and I, one expert, experts with
//! no slots, and more than 16 slots on one expert (several gathers per work-group); an expert
//! id ≥ E is the CPU's error. Other dtypes fall back to the exact kernels, bit for bit.
use std::sync::{Arc, Mutex, OnceLock};

use concord_core::convert::bf16_to_f32;
use concord_core::DType;
use concord_ops::{Backend, ExpertWeights, KernelMode, MoeExperts, Op};

use crate::harness::{cpu, fast, nmse, opencl, run_on, Data, Out, Rng};

fn bf16_values(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(2)
        .map(|b| bf16_to_f32(u16::from_le_bytes(b.try_into().unwrap())) as f64)
        .collect()
}

const DENSE_BF16: MoeExperts = MoeExperts {
    weights: ExpertWeights::Dense,
    out: DType::BF16,
};

/// One routed-experts problem: x [T,H], ids and weights [T,K], gate/up [E,I,H], down [E,H,I].
struct Case {
    t: usize,
    h: usize,
    i: usize,
    e: usize,
    k: usize,
    x: Vec<f32>,
    ids: Vec<u32>,
    w: Vec<f32>,
    experts: [Data; 3],
}

impl Case {
    /// Random inputs; ids avoid the last expert when E > 1 (an expert with no slot), and the
    /// first rank of every token goes to expert `E / 2` (more than 16 slots on one expert
    /// once T > 16).
    fn new(rng: &mut Rng, (t, h, i, e, k): (usize, usize, usize, usize, usize)) -> Case {
        let mut ids: Vec<u32> = (0..t * k)
            .map(|_| rng.below(if e > 1 { e - 1 } else { 1 }) as u32)
            .collect();
        for tok in 0..t {
            ids[tok * k] = (e / 2) as u32;
        }
        Case {
            t,
            h,
            i,
            e,
            k,
            x: rng.vals(t * h, 2.0),
            w: (0..t * k).map(|_| rng.unit()).collect(),
            ids,
            experts: [
                Data::act(DType::BF16, &[e, i, h], &rng.vals(e * i * h, 0.3)),
                Data::act(DType::BF16, &[e, i, h], &rng.vals(e * i * h, 0.3)),
                Data::act(DType::BF16, &[e, h, i], &rng.vals(e * h * i, 0.3)),
            ],
        }
    }

    fn name(&self) -> String {
        let (t, h, i, e, k) = (self.t, self.h, self.i, self.e, self.k);
        format!("moe_experts fast t={t} h={h} i={i} e={e} k={k}")
    }

    /// The inputs of tokens `rows` only, with activations of dtype `x_dt`.
    fn inputs(&self, rows: std::ops::Range<usize>, x_dt: DType) -> Vec<Data> {
        let (h, k, n) = (self.h, self.k, rows.len());
        let mut v = vec![
            Data::act(x_dt, &[n, h], &self.x[rows.start * h..rows.end * h]),
            Data::u32(&[n, k], &self.ids[rows.start * k..rows.end * k]),
            Data::f32(&[n, k], &self.w[rows.start * k..rows.end * k]),
        ];
        v.extend(self.experts.iter().cloned());
        v
    }

    /// Tokens on the busiest expert.
    fn busiest(&self) -> usize {
        (0..self.e)
            .map(|x| self.ids.iter().filter(|&&id| id as usize == x).count())
            .max()
            .unwrap_or(0)
    }
}

/// (T, H, I, E, K).
const SHAPES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 200, 17, 1, 1),
    (3, 64, 96, 5, 2),
    (37, 130, 300, 16, 6),
    (37, 200, 17, 1, 2),
    (20, 64, 300, 5, 1),
    (3, 130, 96, 16, 6),
    (40, 129, 64, 3, 2),
];

#[test]
fn moe_experts_dense_bf16_is_within_tolerance_and_batch_invariant() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(53);
    let op: Op = DENSE_BF16.into();
    let mut chunked = false;
    for shape in SHAPES {
        let c = Case::new(&mut rng, shape);
        let case = c.name();
        chunked |= c.busiest() > 16;
        let inputs = c.inputs(0..c.t, DType::BF16);
        let outs = [Out::new(DType::BF16, &[c.t, c.h])];
        let want = run_on(cpu().as_ref(), &op, &inputs, &outs).expect("cpu runs the case");
        let got =
            run_on(fast().as_ref(), &op, &inputs, &outs).unwrap_or_else(|e| panic!("{case}: {e}"));
        let again =
            run_on(fast().as_ref(), &op, &inputs, &outs).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(got[0], again[0], "{case}: fast mode differs run to run");
        let (e, f) = (bf16_values(&want[0]), bf16_values(&got[0]));
        assert!(
            e.iter().chain(&f).all(|v| v.is_finite()),
            "{case}: non-finite output"
        );
        let err = nmse(&e, &f);
        assert!(err <= 1e-4, "{case}: NMSE {err:e} > 1e-4");
        assert!(
            e.iter().any(|&v| v != 0.0),
            "{case}: the exact output is all zero"
        );
        // A token alone gives the bits it got in the batch.
        let row = 2 * c.h;
        for r in [0, c.t / 2, c.t - 1] {
            let alone = run_on(
                fast().as_ref(),
                &op,
                &c.inputs(r..r + 1, DType::BF16),
                &[Out::new(DType::BF16, &[1, c.h])],
            )
            .unwrap_or_else(|e| panic!("{case}: token {r} alone: {e}"));
            assert_eq!(
                alone[0],
                got[0][r * row..(r + 1) * row],
                "{case}: token {r} depends on the batch"
            );
        }
        // And so does a batch of the other tokens in a different order around it.
        if c.t > 2 {
            let r = c.t / 2;
            let mut order: Vec<usize> = (0..c.t).rev().collect();
            order.retain(|&j| j != r);
            order.insert(1, r);
            let pick = |v: &[f32], n: usize| -> Vec<f32> {
                order
                    .iter()
                    .flat_map(|&j| v[j * n..(j + 1) * n].iter().copied())
                    .collect()
            };
            let ids: Vec<u32> = order
                .iter()
                .flat_map(|&j| c.ids[j * c.k..(j + 1) * c.k].iter().copied())
                .collect();
            let mut shuffled = vec![
                Data::act(DType::BF16, &[c.t, c.h], &pick(&c.x, c.h)),
                Data::u32(&[c.t, c.k], &ids),
                Data::f32(&[c.t, c.k], &pick(&c.w, c.k)),
            ];
            shuffled.extend(c.experts.iter().cloned());
            let moved = run_on(fast().as_ref(), &op, &shuffled, &outs)
                .unwrap_or_else(|e| panic!("{case}: reordered: {e}"));
            assert_eq!(
                moved[0][row..2 * row],
                got[0][r * row..(r + 1) * row],
                "{case}: token {r} depends on its place in the batch"
            );
        }
    }
    assert!(chunked, "no case puts more than 16 slots on one expert");
}

#[test]
fn moe_experts_other_dtypes_keep_the_exact_kernels_in_fast_mode() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(59);
    let c = Case::new(&mut rng, (5, 130, 70, 4, 2));
    for (x_dt, out) in [
        (DType::F32, DType::BF16),
        (DType::BF16, DType::F32),
        (DType::F32, DType::F32),
    ] {
        let op: Op = MoeExperts {
            weights: ExpertWeights::Dense,
            out,
        }
        .into();
        let inputs = c.inputs(0..c.t, x_dt);
        let outs = [Out::new(out, &[c.t, c.h])];
        let want = run_on(cpu().as_ref(), &op, &inputs, &outs).unwrap();
        let got = run_on(fast().as_ref(), &op, &inputs, &outs).unwrap();
        assert_eq!(want, got, "{x_dt}->{out} must take the exact kernels");
    }
}

#[test]
fn moe_experts_fast_reports_the_first_id_past_the_experts() {
    if opencl().is_none() {
        return;
    }
    // Kernels report bad ids at the next read or synchronize: a fast backend of its own, so
    // another test's read cannot receive the error.
    static OWN: OnceLock<Mutex<Arc<dyn Backend>>> = OnceLock::new();
    let own = OWN.get_or_init(|| {
        Mutex::new(concord_backend_opencl::probe_mode(KernelMode::Fast).expect("probed before"))
    });
    let cl = own.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut rng = Rng::new(61);
    let op: Op = DENSE_BF16.into();
    for (t, k, e, bad) in [
        (2usize, 2usize, 3usize, vec![(3usize, 3u32)]),
        // Slots 5 and 133 fall to one work-item's stride, 130 to an earlier item's.
        (70, 3, 4, vec![(130, 11), (133, 7), (5, 9), (200, 100)]),
        (40, 1, 2, vec![(39, 2)]),
    ] {
        let c = Case::new(&mut rng, (t, 72, 20, e, k));
        let mut inputs = c.inputs(0..t, DType::BF16);
        let mut ids = c.ids.clone();
        for &(s, id) in &bad {
            ids[s] = id;
        }
        inputs[1] = Data::u32(&[t, k], &ids);
        let outs = [Out::new(DType::BF16, &[t, c.h])];
        let case = format!("{} bad ids {bad:?}", c.name());
        let want = run_on(cpu().as_ref(), &op, &inputs, &outs)
            .err()
            .unwrap_or_else(|| panic!("{case}: expected the cpu to fail"));
        let got = run_on(cl.as_ref(), &op, &inputs, &outs)
            .err()
            .unwrap_or_else(|| panic!("{case}: opencl did not report the error"));
        assert_eq!(want.to_string(), got.to_string(), "{case}");
        // The error was consumed: the backend works normally afterwards.
        cl.synchronize()
            .expect("no stale error after it was reported");
    }
}
