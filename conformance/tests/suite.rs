//! The suite can fail (test-only perturbation), passes without it, writes its report, and
//! reports an absent backend as unavailable without failing.

use std::path::PathBuf;

use concord_conformance::{run, Config, Verdict};

fn demo_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/demo")
}

fn cpu_vs_cpu() -> Config {
    Config {
        backends: vec!["cpu".into()],
        ..Config::default()
    }
}

#[test]
fn op_suite_passes_cpu_against_itself() {
    let report = run(&cpu_vs_cpu()).unwrap();
    assert!(!report.failed(), "{:#?}", report.failures());
    let cpu = &report.backends[0];
    assert!(cpu.available);
    assert!(cpu.counts.bit_exact >= 100, "{:?}", cpu.counts);
    assert_eq!(cpu.counts.mismatch + cpu.counts.error, 0);
}

#[test]
fn perturbed_op_fails_the_suite_and_is_named() {
    let cfg = Config {
        perturb: Some(("cpu".into(), "matmul".into())),
        ..cpu_vs_cpu()
    };
    let report = run(&cfg).unwrap();
    assert!(report.failed());
    let failures = report.failures();
    assert!(!failures.is_empty());
    assert!(
        failures.iter().all(|f| f.starts_with("cpu matmul/")),
        "{failures:#?}"
    );
    let cpu = &report.backends[0];
    let bad: Vec<_> = cpu
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Mismatch)
        .collect();
    assert!(bad.iter().all(|c| c.op == "matmul" && c.max_ulp >= Some(1)));
    assert!(bad[0].replay.contains("--backends cpu --case matmul/"));
    // Only the perturbed backend/op fails: another op is untouched.
    assert!(cpu
        .cases
        .iter()
        .filter(|c| c.op == "rms_norm")
        .all(|c| c.verdict == Verdict::BitExact));
}

#[test]
fn a_case_replays_from_its_name_and_seed() {
    let all = run(&cpu_vs_cpu()).unwrap();
    let first = &all.backends[0].cases[3];
    let cfg = Config {
        case_filter: Some(first.name.clone()),
        seed: Some(first.seed),
        ..cpu_vs_cpu()
    };
    let one = run(&cfg).unwrap();
    assert_eq!(one.cases_per_backend, 1);
    assert_eq!(one.backends[0].cases[0].name, first.name);
    assert_eq!(one.backends[0].cases[0].seed, first.seed);
}

#[test]
fn report_is_written_with_dozens_of_cases_and_model_checks() {
    let cfg = Config {
        model_dir: Some(demo_model()),
        ..cpu_vs_cpu()
    };
    let report = run(&cfg).unwrap();
    assert!(!report.failed(), "{:#?}", report.failures());
    let dir = std::env::temp_dir().join(format!("concord-conformance-{}", std::process::id()));
    let (json, html) = report.write(&dir).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(v["verdict"], "pass");
    assert_eq!(v["concord_version"], env!("CARGO_PKG_VERSION"));
    let cases = v["backends"][0]["cases"].as_array().unwrap();
    assert!(cases.len() >= 48, "{}", cases.len());
    for check in [
        "logits",
        "greedy",
        "sample",
        "batch_invariance",
        "determinism",
    ] {
        for p in ["f32", "bf16", "fp8"] {
            let name = format!("model/{check}/{p}");
            let c = cases.iter().find(|c| c["name"] == name.as_str()).unwrap();
            assert_eq!(c["verdict"], "bit-exact", "{c}");
        }
    }
    assert_eq!(
        v["backends"][0]["fast_mode"]["note"],
        "no fast path on this backend"
    );
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("PASS") && html.contains("<table>"));
    assert!(html.matches("class=\"bit-exact\"").count() >= 48);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn absent_backend_is_reported_unavailable_not_failed() {
    let cfg = Config {
        backends: vec!["cuda".into()],
        ..Config::default()
    };
    let report = run(&cfg).unwrap();
    let cuda = &report.backends[0];
    if cuda.available {
        println!("SKIP: cuda is available here");
        return;
    }
    assert!(!report.failed());
    assert!(!cuda.reason.as_deref().unwrap_or("").is_empty());
    assert!(cuda.cases.iter().all(|c| c.verdict == Verdict::Unavailable));
    assert!(report.to_html().contains("unavailable"));
    // Required, it fails the run.
    let required = Config {
        require: vec!["cuda".into()],
        ..cfg
    };
    let report = run(&required).unwrap();
    assert!(report.failed());
    assert!(report.failures()[0].contains("cuda"));
}

/// OpenCL (PoCL in CI) has a fast mode: its section lists every op case, holds the matmuls
/// to their NMSE bounds and every other op to bits.
#[test]
fn opencl_fast_mode_section_checks_every_op_case() {
    let cfg = Config {
        backends: vec!["opencl".into()],
        ..Default::default()
    };
    let report = concord_conformance::run(&cfg).unwrap();
    let b = &report.backends[0];
    if !b.available {
        let required = Config::require_from_env().contains(&"opencl".to_string());
        assert!(!required, "opencl required but unavailable: {:?}", b.reason);
        println!("SKIP opencl: {}", b.reason.as_deref().unwrap_or(""));
        return;
    }
    let fast = &b.fast_mode;
    assert!(fast.available, "{}", fast.note);
    assert_eq!(fast.cases.len(), report.cases_per_backend);
    assert_eq!(fast.failed, 0, "{}: {:?}", fast.note, report.failures());
    assert!(
        fast.within > 0,
        "the fast matmuls never differed from exact: {}",
        fast.note
    );
    for c in &fast.cases {
        if !c.fast_kernels && c.verdict != "unsupported" {
            assert_eq!(
                c.verdict, "bit-exact",
                "{} runs exact kernels in fast mode",
                c.name
            );
        }
    }
    assert!(fast
        .cases
        .iter()
        .any(|c| c.op == "block_fp8_matmul" && c.fast_kernels));
}
