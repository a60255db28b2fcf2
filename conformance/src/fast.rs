//! The fast-mode section of a backend's report (docs/numerics.md §1): every op case run on
//! the backend opened in fast mode, twice, against the CPU exact output. An op with fast
//! kernels must stay within its precision's NMSE bound, finite where exact is finite, and
//! identical between the two runs; every other op runs its exact kernels in fast mode too and
//! must stay bit-exact.
use concord_core::DType;
use concord_ops::{Backend, KernelMode, OpKind, Support};
use serde::Serialize;

use crate::cases::OpCase;
use crate::compare::{compare, finiteness_differs, Diff};
use crate::{run_case, Config};

/// NMSE bound of a fast-mode output (docs/numerics.md §1, "Fast-mode tolerances").
pub fn nmse_bound(case: &OpCase) -> f64 {
    if case.support_dtype == DType::F8E4M3 {
        return 1e-3;
    }
    match case.outputs.first().map(|o| o.desc.dtype) {
        Some(DType::F32) => 1e-6,
        _ => 1e-4,
    }
}

/// One op case in fast mode.
#[derive(Debug, Clone, Serialize)]
pub struct FastCase {
    /// Case name, as in the exact-mode list.
    pub name: String,
    /// Op name.
    pub op: String,
    /// Whether the op has fast kernels (else it ran its exact kernels).
    pub fast_kernels: bool,
    /// `bit-exact`, `within`, `beyond`, `unsupported` or `error`.
    pub verdict: &'static str,
    /// NMSE against the CPU exact output (`null` when bit-exact or not compared).
    pub nmse: Option<f64>,
    /// The bound it is held to (0 for ops without fast kernels: bits).
    pub bound: f64,
    /// What went wrong, for `beyond` and `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Fast-mode figures of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct FastMode {
    /// Whether the backend has a fast path (and it opened).
    pub available: bool,
    /// What was measured, or why nothing was.
    pub note: String,
    /// Cases bit-exact in fast mode.
    pub bit_exact: usize,
    /// Cases within their NMSE bound (not bit-exact).
    pub within: usize,
    /// Cases beyond their bound, non-deterministic, or erroring: each fails the run.
    pub failed: usize,
    /// Largest NMSE of a case within its bound.
    pub max_nmse: Option<f64>,
    /// Every case, in suite order.
    pub cases: Vec<FastCase>,
}

impl FastMode {
    /// A backend without a fast path, or one whose fast mode did not open.
    pub fn none(note: impl Into<String>) -> FastMode {
        FastMode {
            available: false,
            note: note.into(),
            bit_exact: 0,
            within: 0,
            failed: 0,
            max_nmse: None,
            cases: Vec::new(),
        }
    }
}

/// Runs `cases` on backend `name` opened in fast mode; `refs` are the CPU exact outputs.
/// `has_fast` says which ops have fast kernels.
pub(crate) fn run(
    cfg: &Config,
    name: &str,
    cases: &[OpCase],
    refs: &[Result<Vec<Vec<u8>>, String>],
    has_fast: impl Fn(OpKind) -> bool,
) -> FastMode {
    if cases.is_empty() {
        return FastMode::none("no op cases selected");
    }
    let backend = match concord_runtime::open_backend_mode(name, KernelMode::Fast) {
        Ok(b) if b.info().mode == KernelMode::Fast => b,
        Ok(_) => return FastMode::none("no fast path on this backend"),
        Err(e) => return FastMode::none(format!("fast mode did not open: {e}")),
    };
    run_backend(cfg, backend.as_ref(), cases, refs, has_fast)
}

/// The fast-mode section for a backend already opened in fast mode (a vendor crate's tests
/// open theirs on a stand-in the normal probe never finds); `refs` are the CPU exact outputs
/// of `cases`, `has_fast` says which ops have fast kernels on it.
pub fn run_backend(
    cfg: &Config,
    backend: &dyn Backend,
    cases: &[OpCase],
    refs: &[Result<Vec<Vec<u8>>, String>],
    has_fast: impl Fn(OpKind) -> bool,
) -> FastMode {
    let mut report = FastMode::none("");
    report.available = true;
    for (case, want) in cases.iter().zip(refs) {
        let fast_kernels = has_fast(case.op.kind());
        let bound = if fast_kernels { nmse_bound(case) } else { 0.0 };
        let (verdict, nmse, reason) = judge(cfg, backend, case, want, bound);
        match verdict {
            "bit-exact" => report.bit_exact += 1,
            "within" => {
                report.within += 1;
                report.max_nmse = match (report.max_nmse, nmse) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            "unsupported" => {}
            _ => report.failed += 1,
        }
        report.cases.push(FastCase {
            name: case.name.clone(),
            op: case.op.kind().name().to_string(),
            fast_kernels,
            verdict,
            nmse,
            bound,
            reason,
        });
    }
    report.note = format!(
        "{} cases: {} bit-exact, {} within tolerance (max NMSE {}), {} failed; deterministic run to run",
        report.cases.len(),
        report.bit_exact,
        report.within,
        report
            .max_nmse
            .map(|n| format!("{n:.2e}"))
            .unwrap_or_else(|| "-".into()),
        report.failed
    );
    report
}

fn judge(
    cfg: &Config,
    backend: &dyn Backend,
    case: &OpCase,
    want: &Result<Vec<Vec<u8>>, String>,
    bound: f64,
) -> (&'static str, Option<f64>, Option<String>) {
    if let Support::Unsupported(_) = backend.supports(case.op.kind(), case.support_dtype) {
        return ("unsupported", None, None);
    }
    let Ok(want) = want else {
        return ("error", None, Some("the cpu reference failed".into()));
    };
    let seed = cfg.seed_for(&case.name);
    let (first, second) = match (run_case(backend, case, seed), run_case(backend, case, seed)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return ("error", None, Some(e)),
    };
    if first != second {
        return ("error", None, Some("outputs differ run to run".into()));
    }
    let mut diff = Diff::default();
    for (j, ((w, g), o)) in want.iter().zip(&first).zip(&case.outputs).enumerate() {
        if let Some(i) = finiteness_differs(o.desc.dtype, w, g) {
            let why = format!("output {j} element {i}: finite in one of exact and fast only");
            return ("beyond", None, Some(why));
        }
        diff.merge(compare(o.desc.dtype, w, g));
    }
    if diff.is_exact() {
        return ("bit-exact", None, None);
    }
    let why = diff.first.clone().unwrap_or_default();
    match diff.nmse {
        Some(n) if n <= bound => ("within", Some(n), None),
        Some(n) => (
            "beyond",
            Some(n),
            Some(format!("NMSE {n:.3e} > {bound:.0e}; first: {why}")),
        ),
        None => (
            "beyond",
            None,
            Some(format!("not comparable by NMSE; first: {why}")),
        ),
    }
}
