//! The `concord` binary end to end, as other tools drive it: logits files, greedy ids on the
//! last line, tokenizer ids, clear failures that leave nothing half-written.

use std::path::PathBuf;

use concord_tests::{fixtures_dir, max_abs_diff, read_f32_tensor, read_references};

mod common;
use common::concord;

fn ok(args: &[&str]) -> String {
    let out = concord(args);
    assert!(
        out.status.success(),
        "concord {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn last_line(s: &str) -> &str {
    s.trim_end().lines().last().unwrap_or("")
}

fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("concord-cli-{}-{name}", std::process::id()))
}

#[test]
fn logits_command_matches_transformers_and_batches_sequences() {
    let dir = fixtures_dir().join("v3_grouped_routing");
    let refs = read_references(&dir);
    let (a, b) = (refs["input_ids.0"].ids(), refs["input_ids.1"].ids());
    let model = dir.to_str().unwrap();
    let single = tmp("single.safetensors");
    ok(&[
        "logits",
        "--model",
        model,
        "--ids",
        &join(&a),
        "--precision",
        "f32",
        "--out",
        single.to_str().unwrap(),
    ]);
    let (shape, values) = read_f32_tensor(&single, "logits");
    assert_eq!(shape, vec![a.len(), 544]);
    assert!(max_abs_diff(&values, &refs["logits.0"].values) <= 1e-3);

    let batch = tmp("batch.safetensors");
    let args = [
        "logits",
        "--model",
        model,
        "--ids",
        &join(&a),
        "--ids",
        &join(&b),
        "--precision",
        "f32",
        "--out",
    ];
    ok(&[&args[..], &[batch.to_str().unwrap()]].concat());
    let (_, first) = read_f32_tensor(&batch, "logits.0");
    let (shape1, second) = read_f32_tensor(&batch, "logits.1");
    assert_eq!(shape1, vec![b.len(), 544]);
    assert_eq!(
        first, values,
        "a sequence's logits do not depend on its batch"
    );
    assert!(max_abs_diff(&second, &refs["logits.1"].values) <= 1e-3);
    let _ = std::fs::remove_file(single);
    let _ = std::fs::remove_file(batch);
}

#[test]
fn generate_emits_the_greedy_ids_of_transformers_on_its_last_line() {
    for case in ["yarn_long_prompt", "qlora_null"] {
        let dir = fixtures_dir().join(case);
        let refs = read_references(&dir);
        let prompt = join(&refs["input_ids.0"].ids());
        let want = join(&refs["greedy.0"].ids());
        let out = ok(&[
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--ids",
            &prompt,
            "--max-new-tokens",
            "16",
            "--temperature",
            "0",
            "--precision",
            "f32",
            "--emit",
            "ids",
        ]);
        assert_eq!(last_line(&out), want, "{case}");
    }
}

#[test]
fn tokenize_matches_the_hugging_face_tokenizer() {
    let dir = fixtures_dir().join("tokenizer");
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let model = fixtures_dir().join("v3_grouped_routing");
    let model = model.to_str().unwrap();
    for case in cases["cases"].as_array().unwrap().iter().take(12) {
        let text = case["text"].as_str().unwrap();
        let mut args = vec!["tokenize", "--model", model, "--text", text];
        if case["add_special_tokens"].as_bool().unwrap() {
            args.push("--add-bos");
        }
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(last_line(&ok(&args)), join(&want), "text {text:?}");
    }
    for (i, case) in cases["chat_cases"].as_array().unwrap().iter().enumerate() {
        let path = tmp(&format!("chat{i}.json"));
        std::fs::write(&path, case["messages"].to_string()).unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let out = ok(&[
            "tokenize",
            "--model",
            model,
            "--chat",
            path.to_str().unwrap(),
        ]);
        assert_eq!(last_line(&out), join(&want), "chat case {i}");
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn generate_runs_the_bundled_demo_model_by_default() {
    let out = ok(&[
        "generate",
        "--prompt",
        "It was the best of times,",
        "--max-new-tokens",
        "8",
    ]);
    assert!(!out.trim().is_empty());
}

#[test]
fn bad_input_fails_cleanly_and_writes_nothing() {
    let model = fixtures_dir().join("dense_only_v3");
    let out_file = tmp("never.safetensors");
    for ids in ["1,2,99999", "a,b", ""] {
        let out = concord(&[
            "logits",
            "--model",
            model.to_str().unwrap(),
            "--ids",
            ids,
            "--out",
            out_file.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "ids {ids:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "stderr names the error: {err}");
        assert!(!err.contains("panicked"), "no panic: {err}");
        assert!(!out_file.exists(), "nothing written");
    }
    let out = concord(&["generate", "--model", "/nonexistent", "--prompt", "x"]);
    assert!(!out.status.success());
    let out = concord(&["generate", "--backend", "nosuch", "--ids", "1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backend"));
}

#[test]
fn inspect_reports_parameters_and_memory() {
    let model = fixtures_dir().join("fp8_block_scaled");
    let out = ok(&["inspect", "--model", model.to_str().unwrap()]);
    assert!(
        out.contains("parameters") && out.contains("F8_E4M3") && out.contains("fp8"),
        "{out}"
    );
    assert!(out.contains("activation scales f32"), "{out}");
    // The same checkpoint declaring DeepSeek-V3.1's power-of-two activation scales.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&model).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let config = dir.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    cfg["quantization_config"]["scale_fmt"] = "ue8m0".into();
    std::fs::write(&config, cfg.to_string()).unwrap();
    let out = ok(&["inspect", "--model", dir.path().to_str().unwrap()]);
    assert!(out.contains("activation scales ue8m0"), "{out}");
}

#[test]
fn kernels_check_compiles_every_kernel_for_each_target() {
    let targets = [
        ("cuda", "sm_80", "CONCORD_REQUIRE_NVRTC"),
        ("cuda", "sm_90", "CONCORD_REQUIRE_NVRTC"),
        ("rocm", "gfx90a", "CONCORD_REQUIRE_HIPRTC"),
        ("rocm", "gfx908", "CONCORD_REQUIRE_HIPRTC"),
        ("rocm", "gfx1030", "CONCORD_REQUIRE_HIPRTC"),
        ("opencl", "-", "CONCORD_REQUIRE_BACKENDS"),
    ];
    for (backend, arch, require) in targets {
        let out = concord(&["kernels", "check", "--backend", backend, "--arch", arch]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            // The summary line: every program compiled, none failed, and at least one per op
            // of the catalogue (fast-mode variants come on top).
            let summary = stdout
                .lines()
                .find(|l| l.contains(" kernels, "))
                .unwrap_or_else(|| panic!("{backend} {arch}: no summary in {stdout}"));
            let numbers: Vec<usize> = summary
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            assert!(
                numbers.len() == 3
                    && numbers[0] == numbers[1]
                    && numbers[2] == 0
                    && numbers[0] >= concord_ops::OpKind::ALL.len(),
                "{backend} {arch}: {summary}"
            );
            continue;
        }
        let required = std::env::var(require)
            .map(|v| v == "1" || v.contains(backend))
            .unwrap_or(false);
        assert!(
            stderr.contains("unavailable") && !required,
            "{backend} {arch}: {stdout}{stderr}"
        );
        println!("SKIP {backend} kernels check {arch}: {}", stderr.trim());
    }
}
