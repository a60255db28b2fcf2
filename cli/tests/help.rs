//! Every command's `--help` teaches by example (issue 17): the examples of its doc comment
//! reach the help text, and the top-level list names each command.

use std::process::Command;

#[test]
fn every_command_help_shows_examples() {
    for command in [
        "generate",
        "chat",
        "logits",
        "tokenize",
        "inspect",
        "convert",
        "kernels",
        "serve",
        "bench",
        "conformance",
        "plan",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_concord"))
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "{command} --help: {text}");
        assert!(
            text.contains(&format!("concord {command}")),
            "{command} --help: {text}"
        );
    }
}
