//! `concord plan` end to end (issue 19 item 5): the printed plan, the checkpoint's actual size
//! beside it, what to change when it does not fit, and clear errors for bad input. The
//! planner's numbers are checked in `loader/tests/memory_plan.rs`.

use std::path::PathBuf;

use concord_tests::fixtures_dir;

mod common;
use common::concord;

/// `metadata.total_size` of the DeepSeek-V3 release's `model.safetensors.index.json`.
const V3_RELEASE_TOTAL_SIZE: u64 = 688_586_727_753;

fn config_dir(name: &str) -> PathBuf {
    fixtures_dir().join("configs").join(name)
}

#[test]
fn command_prints_the_plan_and_the_checkpoint_difference() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        config_dir("deepseek-v3").join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        format!(r#"{{"metadata": {{"total_size": {V3_RELEASE_TOTAL_SIZE}}}, "weight_map": {{}}}}"#),
    )
    .unwrap();
    let out = concord(&[
        "plan",
        "--model",
        dir.path().to_str().unwrap(),
        "--devices",
        "8x141GiB",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "routed experts",
        "latent cache",
        "workspace",
        "verdict: fits",
        "688586727753 bytes",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let diff_line = text.lines().find(|l| l.starts_with("checkpoint")).unwrap();
    let pct: f64 = diff_line
        .rsplit("differs by ")
        .next()
        .and_then(|s| s.trim_end_matches(" %").parse().ok())
        .unwrap_or_else(|| panic!("no difference in {diff_line:?}"));
    assert!(pct.abs() < 1.0, "{diff_line}");

    // BF16 V3 on 8 H200s does not fit, and the command says what would.
    let out = concord(&[
        "plan",
        "--model",
        dir.path().to_str().unwrap(),
        "--devices",
        "8x141GiB",
        "--precision",
        "bf16",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for want in [
        "does not fit",
        "short",
        "more devices",
        "--experts-on host",
        "--precision fp8",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let v3 = config_dir("deepseek-v3");
    let v3 = v3.to_str().unwrap();
    for (args, says) in [
        (vec!["--devices", "eight"], "--devices"),
        (vec!["--devices", "0x141GiB"], "zero devices"),
        (vec!["--devices", "8x141"], "141"),
        (vec!["--devices", "8xGiB"], "--devices"),
        // 256 experts over 6 EP ranks.
        (vec!["--devices", "6x141GiB"], "n_routed_experts = 256"),
        // 128 heads over 3 TP ranks.
        (
            vec![
                "--devices",
                "3x141GiB",
                "--tensor-parallel",
                "3",
                "--expert-parallel",
                "1",
            ],
            "num_attention_heads = 128",
        ),
        (
            vec![
                "--devices",
                "8x141GiB",
                "--tensor-parallel",
                "2",
                "--expert-parallel",
                "2",
            ],
            "4 ranks",
        ),
        (
            vec![
                "--devices",
                "2x141GiB",
                "--experts-on",
                "host",
                "--expert-parallel",
                "2",
            ],
            "--experts-on host",
        ),
        (
            vec!["--devices", "8x141GiB", "--precision", "int4"],
            "--precision",
        ),
        (
            vec!["--devices", "8x141GiB", "--host-memory", "lots"],
            "--host-memory",
        ),
        (vec!["--devices", "8x141GiB", "--batch", "0"], "--batch"),
    ] {
        let mut full = vec!["plan", "--model", v3];
        full.extend(&args);
        let out = concord(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: expected {says:?} in {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
