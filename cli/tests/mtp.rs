//! The MTP contract of the command line: `logits --mtp` writes `mtp_logits` beside `logits`
//! (`.{i}` per sequence of a batch) matching the transformers-based oracle; `generate
//! --speculative mtp --temperature 0 --emit ids` prints the oracle's greedy tokens; a model
//! without MTP is refused with a message naming `num_nextn_predict_layers`, nothing written.

use std::path::PathBuf;

use concord_tests::{fixtures_dir, max_abs_diff, prompts, read_f32_tensor, read_references};

mod common;
use common::concord;

fn fixture() -> PathBuf {
    fixtures_dir().join("mtp_release_layout")
}

fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// `concord logits --mtp --precision f32` of the fixture over `sequences` into `out`.
fn logits_mtp(dir: &std::path::Path, sequences: &[&[u32]], out: &std::path::Path) {
    let mut args = vec![
        "logits".to_string(),
        "--model".into(),
        dir.display().to_string(),
    ];
    args.extend(["--precision", "f32", "--mtp"].map(String::from));
    for s in sequences {
        args.extend(["--ids".to_string(), join(s)]);
    }
    args.extend(["--out".to_string(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = concord(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn logits_mtp_writes_mtp_logits_for_one_sequence_and_for_a_batch() {
    let dir = fixture();
    let refs = read_references(&dir);
    let cases = prompts(&refs);
    let tmp = tempfile::tempdir().unwrap();
    let vocab = refs["logits.0"].shape[1];
    // One sequence: `logits` and `mtp_logits`.
    let (i, ids) = &cases[3];
    let one = tmp.path().join("one.safetensors");
    logits_mtp(&dir, &[ids], &one);
    for (name, reference) in [("logits", "logits"), ("mtp_logits", "mtp_logits")] {
        let (shape, values) = read_f32_tensor(&one, name);
        assert_eq!(shape, [ids.len(), vocab], "{name}");
        // f32 tolerance of tests/tests/mtp.rs (measured 4.5e-6).
        let d = max_abs_diff(&values, &refs[&format!("{reference}.{i}")].values);
        assert!(d < 5e-5, "{name}: {d}");
    }
    // A batch of two: `.0` and `.1` of each.
    let batch = tmp.path().join("batch.safetensors");
    let (j, other) = &cases[1];
    logits_mtp(&dir, &[ids, other], &batch);
    for (k, (index, seq)) in [(i, ids), (j, other)].into_iter().enumerate() {
        let (shape, values) = read_f32_tensor(&batch, &format!("mtp_logits.{k}"));
        assert_eq!(shape, [seq.len(), vocab]);
        let d = max_abs_diff(&values, &refs[&format!("mtp_logits.{index}")].values);
        assert!(d < 5e-5, "mtp_logits.{k}: {d}");
    }
}

#[test]
fn generate_speculative_mtp_prints_the_reference_greedy_tokens() {
    let dir = fixture();
    let refs = read_references(&dir);
    for (i, ids) in prompts(&refs) {
        let want = refs[&format!("greedy.{i}")].ids();
        let o = concord(&[
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--precision",
            "f32",
            "--ids",
            &join(&ids),
            "--speculative",
            "mtp",
            "--draft-tokens",
            "2",
            "--temperature",
            "0",
            "--emit",
            "ids",
            "--ignore-eos",
            "--max-new-tokens",
            &want.len().to_string(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(out.trim(), join(&want), "prompt {i}");
    }
}

#[test]
fn a_model_without_mtp_is_refused_naming_num_nextn_predict_layers() {
    let dir = fixtures_dir().join("v3_grouped_routing");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.safetensors");
    for args in [
        vec!["generate", "--ids", "0,5,7", "--speculative", "mtp"],
        vec![
            "logits",
            "--ids",
            "0,5,7",
            "--mtp",
            "--out",
            out.to_str().unwrap(),
        ],
        vec![
            "bench",
            "--speculative",
            "mtp",
            "--decode-tokens",
            "2",
            "--prompt-tokens",
            "2",
        ],
    ] {
        let mut full = args.clone();
        full.extend(["--model", dir.to_str().unwrap()]);
        let o = concord(&full);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("num_nextn_predict_layers"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!out.exists(), "nothing written");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // And a draft count outside 1..=16.
    let o = concord(&[
        "generate",
        "--ids",
        "0,5",
        "--speculative",
        "mtp",
        "--draft-tokens",
        "17",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("draft tokens must be 1..=16"));
}
