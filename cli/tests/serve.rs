//! `concord serve`: answers over HTTP, and SIGTERM/SIGINT end it gracefully with status 0
//! (not the 130 of the other commands' interrupt handler).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

#[test]
fn serve_help_has_examples() {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["serve", "--help"])
        .output()
        .expect("run concord");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:") && help.contains("concord serve --model"));
    assert!(help.contains("--max-queue") && help.contains("--served-model-name"));
}

/// A raw HTTP/1.1 request; returns the whole answer.
fn http(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[cfg(unix)]
fn serve_then_signal(signal: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["serve", "--port", "0", "--served-model-name", "tiny"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start concord serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the banner");
    let port: u16 = line
        .trim_end()
        .rsplit(':')
        .next()
        .and_then(|p| p.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let body = r#"{"model": "tiny", "prompt": "Hi", "max_tokens": 3, "temperature": 0}"#;
    let answer = http(
        port,
        &format!(
            "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"completion_tokens\":3"), "{answer}");
    let models = http(
        port,
        "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(models.contains("\"id\":\"tiny\""), "{models}");
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("concord serve exits");
    assert_eq!(status.code(), Some(0), "graceful exit after {signal}");
}

#[cfg(unix)]
#[test]
fn sigterm_stops_serve_with_status_0() {
    serve_then_signal("-TERM");
}

#[cfg(unix)]
#[test]
fn sigint_stops_serve_with_status_0() {
    serve_then_signal("-INT");
}
