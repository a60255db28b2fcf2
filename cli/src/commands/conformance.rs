//! `concord conformance`: every op and the whole model on every backend against the CPU
//! reference; writes `conformance.json` and `conformance.html`.

use std::path::PathBuf;

use concord_conformance::{split_list, Config};
use concord_core::{Error, Result};

use crate::common::demo_model_dir;
use crate::stdout::outln;

/// Run every op and the whole model on every backend against the CPU reference.
///
/// Examples:
///
///   concord conformance                                  # every backend, demo model
///
///   concord conformance --backends cpu,opencl --require opencl
///
///   concord conformance --backends opencl --case matmul/m1.k129.n17/f32.f32 --seed 7
///
/// Every backend with a fast mode (cuda, rocm, opencl, ascend) also runs the op cases in fast
/// mode, twice: ops with fast kernels must stay within docs/numerics.md's NMSE bounds of the
/// CPU exact output and identical run to run, every other op bit-exact (the "fast mode" line).
///
/// Exits non-zero on any exact-mode mismatch or error, a fast-mode case beyond its bound, an
/// unknown backend name, or when a backend named in --backends, --require or
/// CONCORD_REQUIRE_BACKENDS is unavailable (with --allow-unavailable, a backend named only in
/// --backends is reported instead). With `--backends all`, unavailable backends are reported
/// only: a vendor checking its own hardware names it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `all` or a comma-separated list (cpu, opencl, cuda, rocm, ascend); `cpu` is compared
    /// against a second, independent CPU instance.
    #[arg(long, default_value = "all", value_name = "LIST")]
    pub backends: String,
    /// Model directory of the model-level cases. Default: the bundled demo model.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Where conformance.json and conformance.html are written.
    #[arg(long, default_value = "conformance-report", value_name = "DIR")]
    pub out: PathBuf,
    /// Backends that must be available (added to CONCORD_REQUIRE_BACKENDS).
    #[arg(long, value_name = "LIST")]
    pub require: Option<String>,
    /// Run only this case (exact name), or every case whose name contains it.
    #[arg(long, value_name = "NAME")]
    pub case: Option<String>,
    /// Seed for every selected case instead of each case's own (to replay a failure).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Skip the model-level cases.
    #[arg(long)]
    pub no_model: bool,
    /// Report a backend named in --backends that cannot run here instead of failing.
    #[arg(long)]
    pub allow_unavailable: bool,
}

/// Runs the suite, prints one line per backend, writes the report.
pub fn run(args: Args) -> Result<()> {
    let named = args.backends.trim() != "all";
    let backends = if named {
        split_list(&args.backends)
    } else {
        concord_runtime::BACKEND_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let mut require = Config::require_from_env();
    require.extend(split_list(args.require.as_deref().unwrap_or("")));
    for name in backends.iter().chain(&require) {
        if !concord_runtime::BACKEND_NAMES.contains(&name.as_str()) {
            return Err(Error::invalid(format!(
                "unknown backend '{name}' (known: {})",
                concord_runtime::BACKEND_NAMES.join(", ")
            )));
        }
    }
    if backends.is_empty() {
        return Err(Error::invalid("--backends names no backend"));
    }
    if named && !args.allow_unavailable {
        require.extend(backends.iter().cloned());
    }
    let model_dir = if args.no_model {
        None
    } else {
        Some(args.model.clone().unwrap_or_else(demo_model_dir))
    };
    if let Some(dir) = &model_dir {
        if !dir.join("config.json").is_file() {
            return Err(Error::invalid(format!(
                "{} is not a model directory (no config.json)",
                dir.display()
            )));
        }
    }
    let cfg = Config {
        backends,
        require,
        model_dir,
        case_filter: args.case,
        seed: args.seed,
        perturb: Config::perturb_from_env(),
        skip_ops: false,
    };
    if let Some((b, o)) = &cfg.perturb {
        eprintln!("warning: test-only perturbation of {o} on {b} is in effect");
    }
    let report = concord_conformance::run(&cfg)?;
    if report.cases_per_backend == 0 {
        return Err(Error::invalid(format!(
            "no case matches '{}'",
            cfg.case_filter.as_deref().unwrap_or("")
        )));
    }
    for b in &report.backends {
        outln!("{}", b.summary_line())?;
        if b.fast_mode.available {
            outln!("{:8} fast mode: {}", "", b.fast_mode.note)?;
        }
    }
    let (json, html) = report.write(&args.out).map_err(|source| Error::Io {
        path: args.out.clone(),
        source,
    })?;
    outln!("report: {} {}", json.display(), html.display())?;
    if report.failed() {
        for f in report.failures().iter().take(20) {
            eprintln!("FAIL {f}");
        }
        for b in &report.backends {
            for c in b.cases.iter().filter(|c| {
                matches!(
                    c.verdict,
                    concord_conformance::Verdict::Mismatch | concord_conformance::Verdict::Error
                )
            }) {
                eprintln!("  replay: {}", c.replay);
            }
        }
        return Err(Error::invalid(format!(
            "conformance failed ({} failing)",
            report.failures().len()
        )));
    }
    outln!(
        "conformance: pass ({} cases per backend)",
        report.cases_per_backend
    )?;
    Ok(())
}
