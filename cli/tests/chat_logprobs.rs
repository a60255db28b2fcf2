//! `concord chat --logprobs N`: after each reply, one JSON line on stderr whose per-token
//! log-probabilities equal an independent log-softmax (f64) of the logits `concord logits`
//! gives for the same prefix (the prompt from `concord tokenize --chat`), as
//! `generate --emit json --logprobs N` is checked in generate_json.rs.

use std::io::Write;
use std::process::{Command, Stdio};

use concord_tests::{log_softmax_at, read_f32_tensor};

mod common;
use common::concord_ok;

fn ids_of(line: &str) -> Vec<u32> {
    line.trim().split(',').map(|i| i.parse().unwrap()).collect()
}

#[test]
fn chat_logprobs_are_the_log_softmax_of_each_steps_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let messages = tmp.path().join("messages.json");
    std::fs::write(&messages, r#"[{"role": "user", "content": "Hello there"}]"#).unwrap();
    let tokenized = concord_ok(&["tokenize", "--chat", messages.to_str().unwrap()]);
    let prompt = ids_of(tokenized.lines().last().unwrap());

    let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args([
            "chat",
            "--precision",
            "f32",
            "--max-new-tokens",
            "6",
            "--logprobs",
            "3",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hello there\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(lines.len(), 1, "one JSON line per reply: {err}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["reply"], 1);
    assert_eq!(v["prompt_tokens"], prompt.len());
    let ids: Vec<u32> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as u32)
        .collect();
    assert!(!ids.is_empty());
    // The printed reply is those tokens' text.
    let reply_text: String = v["logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        reply_text.trim_end()
    );

    // Logits of every position of prompt + all but the last reply token.
    let file = tmp.path().join("logits.safetensors");
    let all: Vec<String> = prompt
        .iter()
        .chain(&ids[..ids.len() - 1])
        .map(u32::to_string)
        .collect();
    concord_ok(&[
        "logits",
        "--precision",
        "f32",
        "--ids",
        &all.join(","),
        "--out",
        file.to_str().unwrap(),
    ]);
    let (shape, logits) = read_f32_tensor(&file, "logits");
    let vocab = shape[1];
    let entries = v["logprobs"].as_array().unwrap();
    assert_eq!(entries.len(), ids.len());
    let mut worst = 0f64;
    for (k, entry) in entries.iter().enumerate() {
        let row = &logits[(prompt.len() - 1 + k) * vocab..(prompt.len() + k) * vocab];
        assert_eq!(entry["id"], ids[k]);
        let got = entry["logprob"].as_f64().unwrap();
        worst = worst.max((got - log_softmax_at(row, ids[k] as usize)).abs());
        let top = entry["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        // Greedy: the chosen id is the most likely one; each alternative is its own
        // log-softmax, best first.
        assert_eq!(top[0]["id"], ids[k]);
        for t in top {
            let id = t["id"].as_u64().unwrap() as usize;
            worst = worst.max((t["logprob"].as_f64().unwrap() - log_softmax_at(row, id)).abs());
        }
        let lps: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
        assert!(lps.windows(2).all(|w| w[0] >= w[1]), "{lps:?}");
    }
    println!("max |logprob - oracle| = {worst:e}");
    // The bound of generate_json.rs: f32 decode against f32 prefill, rounded to f32.
    assert!(worst < 3e-6, "max |Δ| {worst}");
}
