//! Test-only failure injection, so the tests can show what a failed write leaves behind
//! (nothing) without filling a real disk: `CONCORD_TEST_FAIL_AT=<point>` makes the named point
//! fail the way a full disk does, and `CONCORD_TEST_STALL_AT=<point>` makes it wait a minute
//! (so a test can send a signal mid-write). Unset, every point passes at once.

use std::path::Path;

use concord_core::{Error, Result};

/// The variable naming the point to fail.
const VAR: &str = "CONCORD_TEST_FAIL_AT";

/// Fails with "no space left on device" on `path` when `CONCORD_TEST_FAIL_AT` is `point`.
pub fn check(point: &str, path: &Path) -> Result<()> {
    match std::env::var_os(VAR) {
        Some(v) if v == point => Err(Error::io(
            path,
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        )),
        _ => Ok(()),
    }
}

/// Sleeps a minute at `point` when `CONCORD_TEST_STALL_AT` is `point`.
pub fn stall(point: &str) {
    if std::env::var_os("CONCORD_TEST_STALL_AT").is_some_and(|v| v == point) {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}
