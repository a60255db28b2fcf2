//! Concord conformance: every op of the catalogue and the whole model on every backend against
//! the CPU reference, bit for bit in exact mode (docs/numerics.md), with a JSON and an HTML
//! report. `concord conformance` is the command-line front end.
//!
//! Op cases are data ([`cases::OpCase`]) drawn from a seeded generator; each is run on a CPU
//! backend (the reference) and on every selected backend that probes successfully — `cpu`
//! itself included, as a second, independent instance. Model cases load a model directory at
//! f32, bf16 and fp8 and compare logits, greedy and sampled tokens, batch invariance and
//! run-to-run determinism.
//!
//! **Test-only perturbation.** `CONCORD_CONFORMANCE_PERTURB=<backend>:<op>` (or
//! [`Config::perturb`]) makes the harness flip the lowest bit of the first element of that
//! op's first output after reading it back from that backend. It exists only to show that
//! the suite can fail; never set it in a real run (the report records it).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cases;
pub mod compare;
pub mod fast;
mod model;
pub mod report;
pub mod rng;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use concord_core::Error;
use concord_ops::{Backend, Support, TensorArg};

use crate::cases::{OpCase, OutputSpec};
use crate::compare::{compare, Diff};
pub use crate::fast::{FastCase, FastMode};
pub use crate::report::{BackendReport, CaseResult, Counts, Report, Verdict};
use crate::rng::{seed_of, Rng};

/// The environment variable of the test-only perturbation (`backend:op`).
pub const PERTURB_ENV: &str = "CONCORD_CONFORMANCE_PERTURB";
/// The environment variable naming backends that must be available.
pub const REQUIRE_ENV: &str = "CONCORD_REQUIRE_BACKENDS";

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Backends to test against the CPU reference (`cpu` = a second CPU instance).
    pub backends: Vec<String>,
    /// Backends whose unavailability fails the run.
    pub require: Vec<String>,
    /// Model directory for the model-level cases; `None` skips them.
    pub model_dir: Option<PathBuf>,
    /// Run only cases whose name equals this, or contains it.
    pub case_filter: Option<String>,
    /// Use this seed for every case instead of each case's own.
    pub seed: Option<u64>,
    /// Test-only: `(backend, op name)` whose output is perturbed after read-back.
    pub perturb: Option<(String, String)>,
    /// Skip the op-level cases.
    pub skip_ops: bool,
}

impl Config {
    /// The perturbation named by [`PERTURB_ENV`], if set (test-only).
    pub fn perturb_from_env() -> Option<(String, String)> {
        let v = std::env::var(PERTURB_ENV).ok()?;
        let (b, o) = v.split_once(':')?;
        Some((b.trim().to_string(), o.trim().to_string()))
    }

    /// Backends listed in [`REQUIRE_ENV`].
    pub fn require_from_env() -> Vec<String> {
        split_list(&std::env::var(REQUIRE_ENV).unwrap_or_default())
    }

    /// Whether case `name` runs: every case without a filter; with one, the case of exactly
    /// that name if there is one (`exact`), else every case whose name contains it.
    fn selects(&self, name: &str, exact: bool) -> bool {
        match &self.case_filter {
            None => true,
            Some(f) if exact => name == f,
            Some(f) => name.contains(f.as_str()),
        }
    }

    fn seed_for(&self, name: &str) -> u64 {
        self.seed.unwrap_or_else(|| seed_of(name))
    }

    fn perturbs(&self, backend: &str, op: &str) -> bool {
        self.perturb
            .as_ref()
            .is_some_and(|(b, o)| b == backend && o == op)
    }
}

/// Splits `a,b c` into names.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// The command that replays one case on one backend.
pub fn replay_command(backend: &str, case: &str, seed: u64) -> String {
    format!("concord conformance --backends {backend} --case {case} --seed {seed}")
}

/// Runs the suite and returns the report (nothing is written; see [`Report::write`]).
pub fn run(cfg: &Config) -> Result<Report, Error> {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let reference = concord_runtime::open_backend("cpu")?;
    let exact = cfg
        .case_filter
        .as_ref()
        .is_some_and(|f| case_names().contains(f));
    let op_cases: Vec<OpCase> = if cfg.skip_ops {
        Vec::new()
    } else {
        cases::op_cases()
            .into_iter()
            .filter(|c| cfg.selects(&c.name, exact))
            .collect()
    };
    let model_names: Vec<String> = match &cfg.model_dir {
        Some(_) => model::case_names()
            .into_iter()
            .filter(|n| cfg.selects(n, exact))
            .collect(),
        None => Vec::new(),
    };
    let mut names = cfg.backends.clone();
    for r in &cfg.require {
        if !names.contains(r) {
            names.push(r.clone());
        }
    }
    // Reference outputs, computed once for every backend.
    let mut ref_outputs: Option<Vec<Result<Vec<Vec<u8>>, String>>> = None;
    let mut model_ref = model::References::default();
    let mut backends = Vec::new();
    for name in &names {
        let t0 = Instant::now();
        let required = cfg.require.contains(name);
        let fast_mode = FastMode::none("backend unavailable");
        let backend = match concord_runtime::open_backend(name) {
            Ok(b) => b,
            Err(e) => {
                let reason = match e {
                    Error::Unavailable { reason, .. } => reason,
                    other => other.to_string(),
                };
                let cases = op_cases
                    .iter()
                    .map(|c| (c.name.clone(), "op", c.op.kind().name().to_string()))
                    .chain(
                        model_names
                            .iter()
                            .map(|n| (n.clone(), "model", model::check_of(n))),
                    )
                    .map(|(n, level, op)| {
                        let seed = cfg.seed_for(&n);
                        CaseResult {
                            replay: replay_command(name, &n, seed),
                            name: n,
                            level,
                            op,
                            seed,
                            verdict: Verdict::Unavailable,
                            reason: Some(reason.clone()),
                            max_ulp: None,
                            nmse: None,
                            mismatched_elements: None,
                        }
                    })
                    .collect();
                backends.push(finish(
                    name,
                    required,
                    None,
                    Some(reason),
                    cases,
                    t0,
                    fast_mode,
                ));
                continue;
            }
        };
        let refs = ref_outputs.get_or_insert_with(|| {
            op_cases
                .iter()
                .map(|c| run_case(reference.as_ref(), c, cfg.seed_for(&c.name)))
                .collect()
        });
        let mut cases = Vec::new();
        for (case, want) in op_cases.iter().zip(refs.iter()) {
            cases.push(op_verdict(cfg, name, backend.as_ref(), case, want));
        }
        if let Some(dir) = &cfg.model_dir {
            cases.extend(model::run(
                cfg,
                dir,
                &reference,
                &backend,
                name,
                &model_names,
                &mut model_ref,
            ));
        }
        let fast_mode = fast::run(cfg, name, &op_cases, refs, |op| {
            concord_kernels::fast_ops().any(|f| f == op)
        });
        let info = backend.info().clone();
        backends.push(finish(
            name,
            required,
            Some((info.device, info.driver)),
            None,
            cases,
            t0,
            fast_mode,
        ));
    }
    let git_commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let ref_info = reference.info();
    let mut report = Report {
        verdict: "pass",
        concord_version: env!("CARGO_PKG_VERSION"),
        git_commit,
        generated_utc: report::utc_rfc3339(started),
        reference: format!("cpu ({}, {})", ref_info.device, ref_info.driver),
        model: cfg.model_dir.as_ref().map(|d| d.display().to_string()),
        case_filter: cfg.case_filter.clone(),
        seed_override: cfg.seed,
        perturbation: cfg.perturb.as_ref().map(|(b, o)| format!("{b}:{o}")),
        cases_per_backend: op_cases.len() + model_names.len(),
        backends,
    };
    if report.failed() {
        report.verdict = "fail";
    }
    Ok(report)
}

fn finish(
    name: &str,
    required: bool,
    info: Option<(String, String)>,
    reason: Option<String>,
    cases: Vec<CaseResult>,
    t0: Instant,
    fast_mode: FastMode,
) -> BackendReport {
    let mut counts = Counts::default();
    for c in &cases {
        *match c.verdict {
            Verdict::BitExact => &mut counts.bit_exact,
            Verdict::Mismatch => &mut counts.mismatch,
            Verdict::Unsupported => &mut counts.unsupported,
            Verdict::Unavailable => &mut counts.unavailable,
            Verdict::Error => &mut counts.error,
        } += 1;
    }
    let (device, driver) = info.unzip();
    BackendReport {
        name: name.to_string(),
        available: reason.is_none(),
        reason,
        required,
        device,
        driver,
        counts,
        seconds: t0.elapsed().as_secs_f64(),
        fast_mode,
        cases,
    }
}

/// A case result from a verdict and an optional difference.
pub(crate) fn result(
    backend: &str,
    name: &str,
    level: &'static str,
    op: String,
    seed: u64,
    outcome: Result<Diff, (Verdict, String)>,
) -> CaseResult {
    let replay = replay_command(backend, name, seed);
    match outcome {
        Ok(d) => CaseResult {
            name: name.to_string(),
            level,
            op,
            seed,
            verdict: if d.is_exact() {
                Verdict::BitExact
            } else {
                Verdict::Mismatch
            },
            reason: d.first.clone(),
            max_ulp: Some(d.max_ulp),
            nmse: d.nmse,
            mismatched_elements: Some(d.mismatched),
            replay,
        },
        Err((verdict, reason)) => CaseResult {
            name: name.to_string(),
            level,
            op,
            seed,
            verdict,
            reason: Some(reason),
            max_ulp: None,
            nmse: None,
            mismatched_elements: None,
            replay,
        },
    }
}

fn op_verdict(
    cfg: &Config,
    name: &str,
    backend: &dyn Backend,
    case: &OpCase,
    want: &Result<Vec<Vec<u8>>, String>,
) -> CaseResult {
    let seed = cfg.seed_for(&case.name);
    let kind = case.op.kind();
    let outcome = (|| {
        if let Support::Unsupported(reason) = backend.supports(kind, case.support_dtype) {
            return Err((Verdict::Unsupported, reason));
        }
        let want = want
            .as_ref()
            .map_err(|e| (Verdict::Error, format!("the cpu reference failed: {e}")))?;
        let mut got = run_case(backend, case, seed).map_err(|e| (Verdict::Error, e))?;
        if cfg.perturbs(name, kind.name()) {
            if let Some(b) = got.first_mut().and_then(|o| o.first_mut()) {
                *b ^= 1; // lowest bit of the first element (little-endian): test-only.
            }
        }
        let mut diff = Diff::default();
        for ((w, g), o) in want.iter().zip(&got).zip(&case.outputs) {
            diff.merge(compare(o.desc.dtype, w, g));
        }
        Ok(diff)
    })();
    result(
        name,
        &case.name,
        "op",
        kind.name().to_string(),
        seed,
        outcome,
    )
}

/// Runs one case on `backend`: every tensor at a non-zero offset inside a larger buffer, and
/// the bytes around each output checked untouched. Returns each output's bytes.
pub fn run_case(backend: &dyn Backend, case: &OpCase, seed: u64) -> Result<Vec<Vec<u8>>, String> {
    let mut rng = Rng::new(seed);
    let inputs: Vec<Vec<u8>> = case
        .inputs
        .iter()
        .map(|s| s.materialize(&mut rng))
        .collect();
    let inits: Vec<Vec<u8>> = case
        .outputs
        .iter()
        .map(|o: &OutputSpec| match &o.init {
            Some(s) => s.materialize(&mut rng),
            None => (0..o.desc.bytes())
                .map(|i| (i as u8).wrapping_mul(37) ^ 0xA5)
                .collect(),
        })
        .collect();
    let run = || -> Result<Vec<Vec<u8>>, String> {
        let pad = |i: usize| 8 * (i + 1);
        let err = |e: Error| e.to_string();
        let mut bufs = Vec::new();
        for (i, bytes) in inputs.iter().chain(&inits).enumerate() {
            let i = if i < inputs.len() {
                i
            } else {
                i - inputs.len()
            };
            let fill = if bufs.len() < inputs.len() {
                0x5A
            } else {
                0x3C
            };
            let mut all = vec![fill; pad(i)];
            all.extend_from_slice(bytes);
            all.extend_from_slice(&[fill ^ 0xFF; 8]);
            let buf = backend.alloc(all.len()).map_err(err)?;
            backend.write(&buf, 0, &all).map_err(err)?;
            bufs.push(buf);
        }
        let descs = case
            .inputs
            .iter()
            .map(|s| &s.desc)
            .chain(case.outputs.iter().map(|o| &o.desc));
        let views: Vec<TensorArg> = descs
            .enumerate()
            .map(|(j, desc)| {
                let i = if j < inputs.len() {
                    j
                } else {
                    j - inputs.len()
                };
                TensorArg {
                    buffer: &bufs[j],
                    offset: pad(i),
                    desc: desc.clone(),
                }
            })
            .collect();
        let (ins, outs) = views.split_at(inputs.len());
        let prepared = backend.prepare(&case.op).map_err(err)?;
        backend.launch(&prepared, ins, outs).map_err(err)?;
        let mut results = Vec::new();
        for (i, o) in case.outputs.iter().enumerate() {
            let buf = &bufs[inputs.len() + i];
            let mut all = vec![0u8; buf.len()];
            backend.read(buf, 0, &mut all).map_err(err)?;
            let end = pad(i) + o.desc.bytes();
            if !all[..pad(i)].iter().all(|&b| b == 0x3C) || !all[end..].iter().all(|&b| b == 0xC3) {
                return Err(format!("wrote outside output {i}"));
            }
            results.push(all[pad(i)..end].to_vec());
        }
        Ok(results)
    };
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        Err(format!("panicked: {msg}"))
    })
}

/// Every op case name, then every model case name (for listings and `--case`).
pub fn case_names() -> Vec<String> {
    cases::op_cases()
        .into_iter()
        .map(|c| c.name)
        .chain(model::case_names())
        .collect()
}
