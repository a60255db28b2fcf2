//! bench/compare_llama_cpp.sh: its help, and its Concord-only part on a tiny model (llama.cpp
//! itself is never downloaded or built here: too slow for CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/compare_llama_cpp.sh")
}

fn run(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("run bench/compare_llama_cpp.sh")
}

#[test]
fn help_lists_the_options() {
    let out = run(&["--help"]);
    assert!(out.status.success(), "--help exits 0");
    let text = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--hidden",
        "--layers",
        "--rounds",
        "--threads",
        "--quick",
        "--concord-only",
    ] {
        assert!(text.contains(option), "--help mentions {option}: {text}");
    }
}

#[test]
fn concord_only_run_reports_every_measurement_with_the_given_threads() {
    let work = tempfile::tempdir().expect("scratch directory");
    let raw = work.path().join("raw.tsv");
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
        "--rounds",
        "1",
        "--threads",
        "1",
        "--decode",
        "2",
        "--depths",
        "8",
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the run succeeds: {table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    let labels = [
        "prefill 128 tok/s",
        "prefill 512 tok/s",
        "decode 2 tok/s",
        "decode 2 tok/s after 8 tokens",
    ];
    assert_eq!(
        rows.len(),
        labels.len() + 1,
        "header and one row per test: {table}"
    );
    for (row, label) in rows[1..].iter().zip(labels) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[1], label, "{table}");
        // Concord bf16 and Concord fp8 columns hold a rate; llama.cpp's are empty.
        for column in [3, 6] {
            let rate: f64 = cells[column].parse().unwrap_or(-1.0);
            assert!(rate > 0.0, "{label}: column {column} is a rate: {row}");
        }
        assert_eq!(
            cells[2], "–",
            "no llama.cpp figure without llama.cpp: {row}"
        );
    }
    let raw = std::fs::read_to_string(&raw).expect("raw results kept");
    assert_eq!(
        raw.lines().count(),
        2 * labels.len(),
        "one bf16 and one fp8 run per test"
    );
    for line in raw.lines() {
        assert!(
            line.contains("\"threads\":1,"),
            "concord ran with --threads 1: {line}"
        );
    }
}
