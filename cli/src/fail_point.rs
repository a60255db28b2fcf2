//! Test-only failure injection, so the tests can show what a failed write leaves behind
//! (nothing) without filling a real disk: `CONCORD_TEST_FAIL_AT=<point>` makes the named point
//! fail the way a full disk does. Unset, every point passes.

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
