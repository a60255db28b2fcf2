//! Running the `concord` binary from the CLI's integration tests (each test file includes
//! this module; not every file uses every helper).
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `concord` with `args` and returns what it did.
pub fn concord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(args)
        .output()
        .expect("run concord")
}

/// Runs `concord` with `args`, requires success (its stderr is the failure message) and
/// returns its standard output.
pub fn concord_ok(args: &[&str]) -> String {
    let out = concord(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("concord prints UTF-8")
}
