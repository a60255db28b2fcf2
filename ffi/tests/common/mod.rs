//! What the Rust tests of the C ABI share: the last error as a string, and draining a session.
#![allow(dead_code)]

use std::ffi::CStr;

use concord::*;

/// `concord_last_error()` of this thread.
pub fn last_error() -> String {
    // SAFETY: never NULL, NUL-terminated.
    unsafe { CStr::from_ptr(concord_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Every token a live session still produces (`concord_session_next` until DONE); panics with
/// the last error on any other status. The session stays alive.
pub fn drain(session: *mut ConcordSession) -> Vec<u32> {
    let mut tokens = Vec::new();
    let mut token = 0;
    loop {
        // SAFETY: the caller's live session, a writable token.
        match unsafe { concord_session_next(session, &mut token) } {
            Status::ConcordOk => tokens.push(token),
            Status::ConcordDone => return tokens,
            other => panic!("{other:?}: {}", last_error()),
        }
    }
}
