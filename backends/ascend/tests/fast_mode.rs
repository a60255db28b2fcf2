//! Fast mode on the test-only ACL and aclnn stand-ins (a plumbing test, not Ascend hardware):
//! the conformance suite's fast-mode section on the Ascend backend, where BF16 `matmul` and
//! the Dense BF16 routed experts run on the stand-in's aclnnMatmul / aclnnGroupedMatmulV2
//! (f32 accumulation in order of k, a different order from the exact kernels' tree), every
//! other op bit-exact; a BF16 matmul against an independent f64 reference; and fast mode
//! refused with a reason when libopapi is missing or lacks a symbol, exact mode unaffected.
mod common;

use concord_conformance::cases::op_cases;
use concord_conformance::{fast, run_case, Config};
use concord_core::{convert, DType, Error};
use concord_ops::{KernelMode, Matmul, Op, TensorArg};

/// Held by every test here: the first counts the stand-in's aclnn runs, which the others'
/// launches would change.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn fast_section_reports_aclnn_ops_within_tolerance_and_the_rest_bit_exact() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let backend = common::standin_fast_backend();
    assert_eq!(backend.info().mode, KernelMode::Fast);
    assert!(
        backend.info().driver.contains("libopapi.so"),
        "{}",
        backend.info().driver
    );
    let cpu = concord_backend_cpu::probe().expect("cpu backend");
    let cfg = Config::default();
    let matmul_runs_before = common::aclnn_standin_runs(1);
    let grouped_runs_before = common::aclnn_standin_runs(2);
    let cases = op_cases();
    let refs: Vec<_> = cases
        .iter()
        .map(|c| run_case(&*cpu, c, concord_conformance::rng::seed_of(&c.name)))
        .collect();
    let report = fast::run_backend(&cfg, &*backend, &cases, &refs, |op| {
        concord_backend_ascend::FAST_OPS.contains(&op)
    });
    let failed: Vec<String> = report
        .cases
        .iter()
        .filter(|c| !matches!(c.verdict, "bit-exact" | "within" | "unsupported"))
        .map(|c| format!("{} {}: {:?}", c.name, c.verdict, c.reason))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    eprintln!("ascend fast mode on the stand-in: {}", report.note);
    for c in report.cases.iter().filter(|c| c.fast_kernels) {
        eprintln!(
            "  {:<48} {:<9} NMSE {:.2e} (bound {:.0e})",
            c.name,
            c.verdict,
            c.nmse.unwrap_or(0.0),
            c.bound
        );
    }
    // aclnn really ran, once per BF16 matmul and three times per Dense BF16 routed-experts
    // launch (gate, up, down), twice per case (the section runs each case twice).
    let ran = |prefix: &str| {
        report
            .cases
            .iter()
            .filter(|c| c.name.starts_with(prefix) && c.name.ends_with("bf16.bf16"))
            .count() as u64
    };
    let (matmuls, experts) = (ran("matmul/"), ran("moe_experts/"));
    assert!(
        matmuls >= 3 && experts >= 2,
        "{matmuls} matmul, {experts} moe_experts cases"
    );
    assert_eq!(
        common::aclnn_standin_runs(1) - matmul_runs_before,
        2 * matmuls
    );
    assert_eq!(
        common::aclnn_standin_runs(2) - grouped_runs_before,
        2 * 3 * experts
    );
    // Every op aclnn does not run is bit-exact, as in exact mode.
    for c in report.cases.iter().filter(|c| !c.fast_kernels) {
        assert!(
            matches!(c.verdict, "bit-exact" | "unsupported"),
            "{}: {}",
            c.name,
            c.verdict
        );
    }
}

fn bf16s(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| convert::f32_to_bf16(v).to_le_bytes())
        .collect()
}

fn widen(bits: &[u8]) -> Vec<f64> {
    bits.chunks_exact(2)
        .map(|b| f64::from(convert::bf16_to_f32(u16::from_le_bytes([b[0], b[1]]))))
        .collect()
}

/// `y = x · wᵀ` on aclnnMatmul against a float64 reference of the same BF16 inputs: each
/// element within one BF16 rounding (2^-8 relative) plus the f32 accumulation's error.
#[test]
fn bf16_matmul_matches_an_f64_reference() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let backend = common::standin_fast_backend();
    let (m, k, n) = (5usize, 70usize, 9usize);
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 32.0)
        .collect();
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 64.0)
        .collect();
    let (xb, wb) = (bf16s(&x), bf16s(&w));
    let (xs, ws) = (widen(&xb), widen(&wb));
    // Tensors at odd offsets inside larger buffers, as the conformance suite places them.
    let bx = backend.alloc(xb.len() + 6).unwrap();
    backend.write(&bx, 6, &xb).unwrap();
    let bw = backend.alloc(wb.len() + 2).unwrap();
    backend.write(&bw, 2, &wb).unwrap();
    let by = backend.alloc(m * n * 2 + 4).unwrap();
    let arg = |b, offset, shape: [usize; 2]| TensorArg {
        offset,
        ..TensorArg::new(b, DType::BF16, shape)
    };
    let op = Op::Matmul(Matmul { out: DType::BF16 });
    backend
        .run(
            &op,
            &[arg(&bx, 6, [m, k]), arg(&bw, 2, [n, k])],
            &[arg(&by, 4, [m, n])],
        )
        .unwrap();
    let mut out = vec![0u8; m * n * 2];
    backend.read(&by, 4, &mut out).unwrap();
    let got = widen(&out);
    for r in 0..m {
        for c in 0..n {
            let products: Vec<f64> = (0..k).map(|i| xs[r * k + i] * ws[c * k + i]).collect();
            let want: f64 = products.iter().sum();
            let scale: f64 = products.iter().map(|p| p.abs()).sum();
            let err = (got[r * n + c] - want).abs();
            assert!(
                err <= want.abs() * 2f64.powi(-8) + scale * 1e-6,
                "y[{r}, {c}] = {} vs f64 {want}",
                got[r * n + c]
            );
        }
    }
}

#[test]
fn missing_or_incomplete_libopapi_refuses_fast_mode_and_exact_mode_still_runs() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let standin = common::standin_library();
    let (_, nnopbase) = common::aclnn_standin_libraries();
    let nowhere = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-cann/libopapi.so");
    let reason = |r: concord_core::Result<_>| match r {
        Err(Error::Unavailable { backend, reason }) => {
            assert_eq!(backend, "ascend");
            reason
        }
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("fast mode opened without libopapi"),
    };
    let why = reason(concord_backend_ascend::probe_library_fast(
        standin, &nowhere, nnopbase,
    ));
    assert!(why.contains(&nowhere.display().to_string()), "{why}");
    assert!(why.contains("does not load"), "{why}");
    assert!(why.contains("exact mode runs without it"), "{why}");
    // A library that loads but lacks the operators: the ACL stand-in itself.
    let why = reason(concord_backend_ascend::probe_library_fast(
        standin, standin, nnopbase,
    ));
    assert!(why.contains("lacks aclnnMatmulGetWorkspaceSize"), "{why}");
    assert!(why.contains(&standin.display().to_string()), "{why}");
    // Exact mode on the same ACL opens and runs a BF16 matmul.
    let exact = concord_backend_ascend::probe_library(standin).expect("exact mode opens");
    assert_eq!(exact.info().mode, KernelMode::Exact);
    let x = exact.upload(&bf16s(&[1.0, 2.0, 3.0, 4.0])).unwrap();
    let w = exact.upload(&bf16s(&[0.5, 0.25])).unwrap();
    let y = exact.alloc(4).unwrap();
    exact
        .run(
            &Op::Matmul(Matmul { out: DType::BF16 }),
            &[
                TensorArg::new(&x, DType::BF16, [2, 2]),
                TensorArg::new(&w, DType::BF16, [1, 2]),
            ],
            &[TensorArg::new(&y, DType::BF16, [2, 1])],
        )
        .unwrap();
    let mut out = [0u8; 4];
    exact.read(&y, 0, &mut out).unwrap();
    assert_eq!(widen(&out), vec![1.0, 2.5]);
}

/// Runs Dense routed experts (BF16 x, weights and out) with `ids` on `backend`.
fn routed_experts(
    backend: &std::sync::Arc<dyn concord_ops::Backend>,
    (t, h, i, e, k): (usize, usize, usize, usize, usize),
    ids: &[u32],
) -> Vec<f64> {
    let fill = |len: usize, seed: usize, scale: f32| -> Vec<f32> {
        (0..len)
            .map(|j| (((j * 7919 + seed * 104729) % 211) as f32 - 105.0) / 105.0 * scale)
            .collect()
    };
    let x = backend.upload(&bf16s(&fill(t * h, 1, 2.0))).unwrap();
    let id_bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
    let ids_buf = backend.upload(&id_bytes).unwrap();
    let weights: Vec<u8> = (0..t * k)
        .flat_map(|j| (0.25 + j as f32 / 16.0).to_le_bytes())
        .collect();
    let weights = backend.upload(&weights).unwrap();
    let gate = backend.upload(&bf16s(&fill(e * i * h, 2, 0.3))).unwrap();
    let up = backend.upload(&bf16s(&fill(e * i * h, 3, 0.3))).unwrap();
    let down = backend.upload(&bf16s(&fill(e * h * i, 4, 0.3))).unwrap();
    let out = backend.alloc(t * h * 2).unwrap();
    let op = Op::MoeExperts(concord_ops::MoeExperts {
        weights: concord_ops::ExpertWeights::Dense,
        out: DType::BF16,
    });
    backend
        .run(
            &op,
            &[
                TensorArg::new(&x, DType::BF16, [t, h]),
                TensorArg::new(&ids_buf, DType::U32, [t, k]),
                TensorArg::new(&weights, DType::F32, [t, k]),
                TensorArg::new(&gate, DType::BF16, [e, i, h]),
                TensorArg::new(&up, DType::BF16, [e, i, h]),
                TensorArg::new(&down, DType::BF16, [e, h, i]),
            ],
            &[TensorArg::new(&out, DType::BF16, [t, h])],
        )
        .unwrap();
    let mut bytes = vec![0u8; t * h * 2];
    backend.read(&out, 0, &mut bytes).unwrap();
    widen(&bytes)
}

/// Routed experts whose expert order is not its own inverse (slot 0 goes to row 8, row 0 holds
/// slot 1) and with experts 2 and 5 empty, against the CPU backend's exact output.
#[test]
fn routed_experts_with_uneven_groups_match_exact_mode() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let backend = common::standin_fast_backend();
    let cpu = concord_backend_cpu::probe().expect("cpu backend");
    let shape = (4, 24, 20, 6, 3);
    let ids = [3, 0, 1, 1, 4, 3, 0, 3, 1, 4, 1, 0];
    let grouped_before = common::aclnn_standin_runs(2);
    let got = routed_experts(&backend, shape, &ids);
    assert_eq!(common::aclnn_standin_runs(2) - grouped_before, 3);
    let want = routed_experts(&cpu, shape, &ids);
    let err: f64 = want.iter().zip(&got).map(|(w, g)| (w - g).powi(2)).sum();
    let norm: f64 = want.iter().map(|w| w * w).sum();
    assert!(norm > 0.0);
    assert!(
        err / norm <= 1e-4,
        "NMSE {:.3e}: {got:?} vs {want:?}",
        err / norm
    );
}

/// The demo model at `--precision bf16`: every prompt position's logits and one decode step.
fn model_logits(backend: std::sync::Arc<dyn concord_ops::Backend>) -> Vec<f32> {
    use concord_runtime::{LoadOptions, LogitRows, Model, Precision};
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo");
    let options = LoadOptions {
        precision: Some(Precision::Bf16),
        max_positions: Some(32),
        mtp: false,
        ..LoadOptions::default()
    };
    let model = Model::load(&dir, backend, &options, &mut |_, _| true).expect("load");
    let mut seq = model.new_sequence(8).expect("sequence");
    let prompt: &[u32] = &[1, 7, 42, 3, 99];
    let mut out = Vec::new();
    for tokens in [prompt, &[17]] {
        let logits = model
            .forward(&mut [&mut seq], &[tokens], LogitRows::All)
            .expect("forward")
            .per_sequence;
        out.extend(logits.into_iter().flatten());
    }
    out
}

/// The whole demo model in fast mode (its BF16 projections and routed experts on the aclnn
/// stand-in) within docs/numerics.md §9's bf16 bound of the CPU backend's exact logits:
/// `max |Δ| ≤ 0.05·max|ref| + 0.05`.
#[test]
fn whole_model_in_fast_mode_is_within_the_bf16_tolerance() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cpu = concord_backend_cpu::probe().expect("cpu backend");
    let (matmuls, grouped) = (common::aclnn_standin_runs(1), common::aclnn_standin_runs(2));
    let got = model_logits(common::standin_fast_backend());
    assert!(
        common::aclnn_standin_runs(1) > matmuls,
        "no aclnnMatmul ran"
    );
    assert!(
        common::aclnn_standin_runs(2) > grouped,
        "no aclnnGroupedMatmulV2 ran"
    );
    let want = model_logits(cpu);
    assert_eq!(want.len(), got.len());
    let scale = want.iter().fold(0f32, |m, w| m.max(w.abs()));
    let worst = want
        .iter()
        .zip(&got)
        .fold(0f32, |m, (w, g)| m.max((w - g).abs()));
    assert!(
        worst <= 0.05 * scale + 0.05,
        "max |Δlogit| {worst} (scale {scale})"
    );
    eprintln!(
        "demo model, bf16, fast mode on the stand-in: max |Δlogit| {worst:.3e} of {scale:.3}"
    );
}
