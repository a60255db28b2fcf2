//! `concord generate --stop`: the text ends just before the first stop string, the summary says
//! `finish: stop`, and `--emit ids` ends with the token that completed it. The oracle is the
//! same greedy generation without `--stop`, cut at the first occurrence of the stop text by a
//! plain string search in the test.

use std::process::Command;

const PROMPT: &str = "It was the best of times,";

fn generate(extra: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["generate", "--prompt", PROMPT, "--temperature", "0"])
        .args(["--max-new-tokens", "40", "--ignore-eos"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn generation_ends_just_before_the_first_stop_string() {
    let (full, _) = generate(&[]);
    let continuation = full
        .strip_prefix(PROMPT)
        .expect("the prompt is echoed")
        .trim_end_matches('\n');
    // A stop text from the middle of the greedy continuation (the demo model is sure of it).
    let chars: Vec<char> = continuation.chars().collect();
    assert!(chars.len() > 20, "continuation too short: {continuation:?}");
    let stop: String = chars[12..16].iter().collect();
    let cut = continuation.find(&stop).unwrap();
    let (text, summary) = generate(&["--stop", &stop, "--stop", "never appears"]);
    assert_eq!(text, format!("{PROMPT}{}\n", &continuation[..cut]));
    assert!(summary.contains("finish: stop"), "{summary}");

    // The ids end with the token whose text completed the stop string: a strict prefix of
    // the ids without --stop.
    let (all_ids, _) = generate(&["--emit", "ids"]);
    let (ids, _) = generate(&["--emit", "ids", "--stop", &stop]);
    let (all_ids, ids) = (all_ids.trim(), ids.trim());
    assert!(
        all_ids.starts_with(ids) && ids.len() < all_ids.len(),
        "{ids} vs {all_ids}"
    );
}

#[test]
fn a_stop_string_that_never_appears_changes_nothing() {
    let (full, summary) = generate(&[]);
    let (text, stopped_summary) = generate(&["--stop", "zzzq"]);
    assert_eq!(text, full);
    assert!(summary.contains("finish: length") && stopped_summary.contains("finish: length"));
}
