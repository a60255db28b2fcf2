//! `--experts-on device|host` end to end: every command that loads a model takes it; with
//! the experts on the host, `logits` and greedy `generate` on OpenCL give the CPU's bytes and
//! ids, and `bench` reports the host/device split. One test drives OpenCL (each run its own
//! process); without a platform it prints `SKIP opencl: <reason>` (a failure when
//! CONCORD_REQUIRE_BACKENDS names opencl).

use concord_tests::fixtures_dir;

mod common;
use common::concord;

fn ok(args: &[&str]) -> Vec<u8> {
    let out = concord(args);
    assert!(
        out.status.success(),
        "concord {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn opencl_available() -> bool {
    let out = ok(&["backends"]);
    let text = String::from_utf8_lossy(&out);
    let line = text.lines().find(|l| l.starts_with("opencl")).unwrap_or("");
    if line.contains("available") && !line.contains("unavailable") {
        return true;
    }
    let required = std::env::var("CONCORD_REQUIRE_BACKENDS").unwrap_or_default();
    assert!(
        !required.split(',').any(|b| b.trim() == "opencl"),
        "opencl required but unavailable: {line}"
    );
    println!("SKIP opencl: {line}");
    false
}

#[test]
fn every_model_command_takes_experts_on_and_rejects_other_places() {
    for command in ["logits", "generate", "chat", "bench", "serve", "inspect"] {
        let help = String::from_utf8(ok(&[command, "--help"])).unwrap();
        assert!(
            help.contains("--experts-on"),
            "{command} --help lacks --experts-on"
        );
    }
    let out = concord(&["logits", "--experts-on", "gpu", "--ids", "0,5"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gpu") && err.contains("device or host"),
        "unclear error: {err}"
    );
}

#[test]
fn experts_on_host_gives_the_cpu_bytes_through_the_cli() {
    if !opencl_available() {
        return;
    }
    let model = fixtures_dir().join("v3_grouped_routing");
    let model = model.to_str().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    for precision in ["f32", "bf16", "fp8"] {
        let mut files = Vec::new();
        for (backend, place) in [("cpu", "device"), ("opencl", "host")] {
            let out = scratch
                .path()
                .join(format!("{precision}-{backend}.safetensors"));
            ok(&[
                "logits",
                "--model",
                model,
                "--backend",
                backend,
                "--experts-on",
                place,
                "--precision",
                precision,
                "--ids",
                "0,5,17,33,2",
                "--ids",
                "0,9",
                "--out",
                out.to_str().unwrap(),
            ]);
            files.push(std::fs::read(&out).unwrap());
        }
        assert!(files[0] == files[1], "{precision}: logits files differ");
    }
    let generate = |backend: &str, place: &str| {
        ok(&[
            "generate",
            "--backend",
            backend,
            "--experts-on",
            place,
            "--ids",
            "0,431,77",
            "--temperature",
            "0",
            "--max-new-tokens",
            "8",
            "--emit",
            "ids",
        ])
    };
    assert_eq!(generate("opencl", "host"), generate("cpu", "device"));
    let bench = String::from_utf8(ok(&[
        "bench",
        "--backend",
        "opencl",
        "--experts-on",
        "host",
        "--prompt-tokens",
        "8",
        "--decode-tokens",
        "4",
    ]))
    .unwrap();
    assert!(
        bench.contains("experts on host: 1.12 MiB of routed experts in host RAM"),
        "bench does not report the split: {bench}"
    );
}
