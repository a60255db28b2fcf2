//! `concord conformance` is what a vendor runs to prove its hardware: a typo in a backend name,
//! or a backend it names that cannot run, must fail the run rather than pass it.

use std::process::{Command, Output};

fn conformance(extra: &[&str]) -> Output {
    let out = std::env::temp_dir().join(format!("concord-conformance-args-{}", std::process::id()));
    let out = out.to_str().unwrap().to_string();
    let mut args = vec!["conformance", "--no-model", "--case", "add/", "--out", &out];
    args.extend_from_slice(extra);
    let result = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(&args)
        // The backends this test names are its own; CI's required list must not add to them.
        .env_remove("CONCORD_REQUIRE_BACKENDS")
        .output()
        .expect("run concord");
    let _ = std::fs::remove_dir_all(&out);
    result
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_unknown_backend_name_fails_before_anything_runs() {
    let out = conformance(&["--backends", "cpu,foo"]);
    assert!(!out.status.success(), "a typo must not pass");
    assert!(
        stderr(&out).contains("unknown backend 'foo'"),
        "{}",
        stderr(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing ran: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Ascend has no runtime on the development machine and in CI (it reports why), so naming it
/// must fail unless the caller allows unavailable backends.
#[test]
fn a_named_backend_that_cannot_run_fails_unless_allowed() {
    let named = conformance(&["--backends", "cpu,ascend"]);
    assert!(
        !named.status.success(),
        "ascend named but unavailable must fail"
    );
    let allowed = conformance(&["--backends", "cpu,ascend", "--allow-unavailable"]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    let text = String::from_utf8_lossy(&allowed.stdout);
    assert!(
        text.contains("ascend"),
        "the unavailable backend is still reported: {text}"
    );
}
