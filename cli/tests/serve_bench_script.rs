//! bench/compare_serving.sh: its help, and its Concord-only part on a tiny model (llama.cpp
//! itself is never downloaded or built here: too slow for CI). Needs python3 (standard
//! library only) and curl; loopback only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/compare_serving.sh")
}

fn run(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("run bench/compare_serving.sh")
}

#[test]
fn help_lists_the_options() {
    let out = run(&["--help"]);
    assert!(out.status.success(), "--help exits 0");
    let text = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--concurrency",
        "--max-tokens",
        "--threads",
        "--concord-only",
        "--work",
    ] {
        assert!(text.contains(option), "--help mentions {option}: {text}");
    }
}

#[test]
fn concord_only_run_generates_every_requested_token_at_each_concurrency() {
    let work = tempfile::tempdir().expect("scratch directory");
    let raw = work.path().join("raw.jsonl");
    // A port per test process, so parallel test runs do not collide.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let out = run(&[
        "--concord-only",
        "--concord",
        env!("CARGO_BIN_EXE_concord"),
        "--work",
        work.path().to_str().expect("utf-8 path"),
        "--results",
        raw.to_str().expect("utf-8 path"),
        "--hidden",
        "128",
        "--layers",
        "2",
        "--threads",
        "1",
        "--concurrency",
        "1 3",
        "--max-tokens",
        "5",
        "--prompt-lengths",
        "4,20",
        "--port",
        &port.to_string(),
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the run succeeds: {table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 3, "header and one row per concurrency: {table}");
    let raw = std::fs::read_to_string(&raw).expect("raw results kept");
    let results: Vec<serde_json::Value> = raw
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(results.len(), 2, "{raw}");
    for (r, concurrency) in results.iter().zip([1u64, 3]) {
        assert_eq!(r["label"], "concord");
        assert_eq!(r["concurrency"], concurrency);
        assert_eq!(r["requests"], concurrency, "one request per client: {r}");
        assert_eq!(r["errors"], 0, "{r}");
        // ignore_eos: every request generates max_tokens, one stream chunk each.
        assert_eq!(r["output_tokens"], concurrency * 5, "{r}");
        assert_eq!(r["chunks_per_token"], 1.0, "{r}");
        assert!(r["output_tok_s"].as_f64().unwrap() > 0.0, "{r}");
        let (p50, p99) = (
            r["ttft_p50_ms"].as_f64().unwrap(),
            r["ttft_p99_ms"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99, "{r}");
    }
}
