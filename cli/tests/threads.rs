//! `--threads N` sets the CPU backend's thread count; the output does not depend on it.

mod common;
use common::concord;

#[test]
fn the_thread_count_is_used_and_changes_no_bit() {
    let info = concord(&["backends", "--threads", "1"]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        text.contains("(1 threads)"),
        "the cpu backend reports one thread: {text}"
    );
    let run = |threads: &str| {
        let args = [
            "generate",
            "--threads",
            threads,
            "--ids",
            "0,17,42",
            "--max-new-tokens",
            "8",
            "--temperature",
            "0.8",
            "--seed",
            "3",
            "--emit",
            "ids",
        ];
        let out = concord(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    assert_eq!(run("1"), run("2"), "seeded generation with 1 and 2 threads");
}

#[test]
fn zero_threads_is_refused() {
    let out = concord(&["generate", "--threads", "0", "--ids", "0,1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads must be at least 1"));
}
