//! `chat` survives its context (drops the oldest turns, says so, keeps going), has commands
//! that never reach the model, and `generate` echoes its prompt and stops cleanly at the
//! context limit with `finish: length`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn chat(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
        .arg("chat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_long_chat_drops_its_oldest_turns_instead_of_failing() {
    let input: String = (1..=12)
        .map(|i| format!("Tell me about the best of times and the worst of times, number {i}\n"))
        .collect();
    let o = chat(&["--context", "160", "--max-new-tokens", "40"], &input);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("outgrew the 160-token context: dropped the"),
        "{err}"
    );
    assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
}

#[test]
fn commands_are_not_sent_to_the_model_and_a_too_long_message_is_refused_alone() {
    let o = chat(&[], "/help\n/bogus\n\n/reset\n/exit\nnever read\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("/reset start over"), "{err}");
    assert!(err.contains("unknown command /bogus"), "{err}");
    assert!(
        o.stdout.is_empty(),
        "no reply: {}",
        String::from_utf8_lossy(&o.stdout)
    );

    let long = "word ".repeat(200);
    let o = chat(
        &["--context", "64", "--max-new-tokens", "4"],
        &format!("{long}\nhello\n"),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("send something shorter"), "{err}");
    // The next message is answered.
    assert!(!o.stdout.is_empty(), "{err}");
}

#[test]
fn generate_echoes_the_prompt_and_stops_at_the_context_limit() {
    let o = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args([
            "generate",
            "--prompt",
            "It was the best of times,",
            "--context",
            "40",
            "--max-new-tokens",
            "2000",
            "--ignore-eos",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.starts_with("It was the best of times,"), "{out}");
    assert!(out.ends_with('\n'), "{out:?}");
    assert!(err.contains("10 prompt tokens, 30 generated"), "{err}");
    assert!(err.contains("finish: length (context 40)"), "{err}");
}

#[test]
fn chat_replies_end_just_before_a_stop_string() {
    // Oracle: the same greedy reply without --stop, cut at the stop text's first occurrence.
    let message = "It was the best of times,\n/exit\n";
    let plain = chat(&["--temperature", "0", "--max-new-tokens", "30"], message);
    let plain = String::from_utf8(plain.stdout).unwrap();
    let reply = plain.lines().next().expect("a reply line");
    let stop = "age of";
    let cut = reply
        .find(stop)
        .expect("the demo model's reply contains the stop text");
    let stopped = chat(
        &[
            "--temperature",
            "0",
            "--max-new-tokens",
            "30",
            "--stop",
            stop,
        ],
        message,
    );
    let err = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(0), "{err}");
    let stopped = String::from_utf8(stopped.stdout).unwrap();
    assert_eq!(stopped.lines().next(), Some(&reply[..cut]), "{stopped}");
}
