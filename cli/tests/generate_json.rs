//! `concord generate --emit json --logprobs N`: the JSON object's ids and text agree with the
//! other emit modes, and each token's log-probability equals an independent log-softmax (f64,
//! in this test) of the logits `concord logits` gives for the same prefix.

use std::process::Command;

use concord_tests::{log_softmax_at, read_f32_tensor};

mod common;
use common::concord_ok;

#[test]
fn json_logprobs_are_the_log_softmax_of_each_steps_logits() {
    let prompt = [1u32, 279, 286, 446, 310];
    let ids_arg = prompt.map(|i| i.to_string()).join(",");
    let common = [
        "generate",
        "--ids",
        &ids_arg,
        "--max-new-tokens",
        "6",
        "--ignore-eos",
        "--precision",
        "f32",
    ];
    let json = concord_ok(&[&common[..], &["--emit", "json", "--logprobs", "3"]].concat());
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let ids: Vec<u32> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as u32)
        .collect();
    let plain_ids = concord_ok(&[&common[..], &["--emit", "ids"]].concat());
    let joined = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    assert_eq!(plain_ids.trim(), joined);
    assert_eq!(v["completion_tokens"], 6);
    assert_eq!(v["finish_reason"], "length");

    // Logits of every position of prompt + all but the last generated token.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("logits.safetensors");
    let all: Vec<u32> = prompt
        .iter()
        .chain(&ids[..ids.len() - 1])
        .copied()
        .collect();
    let all_arg = all.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    concord_ok(&[
        "logits",
        "--precision",
        "f32",
        "--ids",
        &all_arg,
        "--out",
        file.to_str().unwrap(),
    ]);
    let (shape, logits) = read_f32_tensor(&file, "logits");
    let vocab = shape[1];
    let mut worst = 0f64;
    for (k, entry) in v["logprobs"].as_array().unwrap().iter().enumerate() {
        let row = &logits[(prompt.len() - 1 + k) * vocab..(prompt.len() + k) * vocab];
        let want = log_softmax_at(row, ids[k] as usize);
        assert_eq!(entry["id"], ids[k]);
        let got = entry["logprob"].as_f64().unwrap();
        worst = worst.max((got - want).abs());
        let top = entry["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        // Greedy: the chosen id is the most likely one, and the list is best first.
        assert_eq!(top[0]["id"], ids[k]);
        let lps: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
        assert!(lps.windows(2).all(|w| w[0] >= w[1]), "{lps:?}");
    }
    println!("max |logprob - oracle| = {worst:e}");
    // f32 precision: the decode steps' logits and the prefill pass's for the same positions
    // agree to rounding, and the JSON holds the log-probability rounded to f32; measured
    // 6.0e-7 on the demo model, bound 3e-6 (bf16 would differ by ~1e-2 between the two paths).
    assert!(worst < 3e-6, "max |Δ| {worst}");
}

#[test]
fn logprobs_without_json_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["generate", "--ids", "1,2", "--logprobs", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--logprobs needs --emit json"));
}
