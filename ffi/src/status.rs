//! Status codes, the thread-local last-error message, and [`guard`], which every entry point
//! runs its body under.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use concord_core::Error;

/// What a call did. `CONCORD_OK` (0) and `CONCORD_DONE` (1) are successes; every error is
/// negative and leaves a message for `concord_last_error()` on the calling thread.
/// cbindgen:prefix-with-name=false
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // The C names are CONCORD_*.
pub enum Status {
    /// Success.
    ConcordOk = 0,
    /// `concord_session_next`: generation has ended (stop token or token budget); no token
    /// was produced. Every later call returns it again.
    ConcordDone = 1,
    /// A pointer was NULL or misaligned, a string was not UTF-8, a size or value was out of
    /// range, or the call does not apply in the current state.
    ConcordErrInvalidArgument = -1,
    /// A handle that this library did not issue, that was already freed, or of the wrong kind
    /// (a session passed as a model).
    ConcordErrInvalidHandle = -2,
    /// The output buffer is too small; the size needed was stored through the size pointer.
    ConcordErrBufferTooSmall = -3,
    /// The backend cannot run on this machine (no driver, no device, not built yet).
    ConcordErrUnavailable = -4,
    /// A callback returned false; the operation stopped and produced nothing further.
    ConcordErrCancelled = -5,
    /// The model directory is not a usable checkpoint (config, weights or tokenizer).
    ConcordErrModel = -6,
    /// A file could not be read.
    ConcordErrIo = -7,
    /// The backend or model does not implement what was asked.
    ConcordErrUnsupported = -8,
    /// The vendor runtime (CUDA, HIP, OpenCL, CANN) reported an error.
    ConcordErrBackend = -9,
    /// A bug in Concord: a panic was caught at the boundary. The message says where.
    ConcordErrInternal = -10,
}

/// An error on its way to C: the status to return and the message to leave behind.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: Status,
    pub message: String,
}

/// Result of an entry point's body.
pub(crate) type FfiResult<T> = Result<T, Failure>;

impl Failure {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }
    /// `CONCORD_ERR_INVALID_ARGUMENT` with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Status::ConcordErrInvalidArgument, message)
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        let status = match &err {
            Error::Unavailable { .. } => Status::ConcordErrUnavailable,
            Error::InvalidArgument(_) => Status::ConcordErrInvalidArgument,
            Error::Unsupported(_) => Status::ConcordErrUnsupported,
            Error::Model(_) => Status::ConcordErrModel,
            Error::Backend { .. } => Status::ConcordErrBackend,
            Error::Io { .. } => Status::ConcordErrIo,
            Error::Cancelled => Status::ConcordErrCancelled,
        };
        Failure::new(status, err.to_string())
    }
}

thread_local! {
    /// The message of the last failure on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `message` (interior NULs replaced) as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    // `try_with` fails only while the thread is being torn down; the message is then dropped.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = text);
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Runs `body` for the entry point `name`: its value on success; on failure or panic the
/// `fallback`, with the last error set to `"<name>: <message>"`.
pub(crate) fn guard_value<T>(name: &str, fallback: T, body: impl FnOnce() -> FfiResult<T>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(failure)) => {
            set_last_error(&format!("{name}: {}", failure.message));
            fallback
        }
        Err(payload) => {
            set_last_error(&format!(
                "{name}: internal error (panic): {}",
                panic_message(payload.as_ref())
            ));
            fallback
        }
    }
}

/// [`guard_value`] for entry points that return a [`Status`].
pub(crate) fn guard(name: &str, body: impl FnOnce() -> FfiResult<Status>) -> Status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(failure)) => {
            set_last_error(&format!("{name}: {}", failure.message));
            failure.status
        }
        Err(payload) => {
            set_last_error(&format!(
                "{name}: internal error (panic): {}",
                panic_message(payload.as_ref())
            ));
            Status::ConcordErrInternal
        }
    }
}

const VERSION: &CStr = match CStr::from_bytes_with_nul(
    concat!("concord ", env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(v) => v,
    Err(_) => panic!("the version string has an interior NUL"),
};

/// The library's version, e.g. `"concord 0.1.0"`: a static string, never NULL, never freed.
///
/// Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn concord_version() -> *const c_char {
    guard_value("concord_version", c"concord".as_ptr(), || {
        Ok(VERSION.as_ptr())
    })
}

/// The message of the most recent failure of a `concord_*` call on the calling thread, or
/// `""` if none failed yet; never NULL. Successful calls leave it unchanged. The string
/// belongs to the library and stays valid until the next `concord_*` call on this thread;
/// copy it to keep it.
///
/// Thread safety: any thread; each thread has its own message.
#[no_mangle]
pub extern "C" fn concord_last_error() -> *const c_char {
    guard_value("concord_last_error", c"".as_ptr(), || {
        Ok(LAST_ERROR
            .try_with(|slot| slot.borrow().as_ptr())
            .unwrap_or(c"".as_ptr()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: concord_last_error never returns NULL and its string is NUL-terminated.
        unsafe { CStr::from_ptr(concord_last_error()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_panic_becomes_internal_with_a_message() {
        let status = guard("concord_test", || panic!("boom {}", 42));
        assert_eq!(status, Status::ConcordErrInternal);
        assert_eq!(
            last_error(),
            "concord_test: internal error (panic): boom 42"
        );
        let value = guard_value("concord_test_value", 7, || panic!("static"));
        assert_eq!(value, 7);
        assert_eq!(
            last_error(),
            "concord_test_value: internal error (panic): static"
        );
    }

    #[test]
    fn failures_map_to_codes_and_messages() {
        let status = guard("concord_test", || Err(Error::Cancelled.into()));
        assert_eq!(status, Status::ConcordErrCancelled);
        assert_eq!(last_error(), "concord_test: cancelled");
        // Success leaves the message alone; NULs in messages are replaced.
        assert_eq!(
            guard("concord_test", || Ok(Status::ConcordOk)),
            Status::ConcordOk
        );
        assert_eq!(last_error(), "concord_test: cancelled");
        guard("concord_test", || Err(Failure::invalid("a\0b")));
        assert_eq!(last_error(), "concord_test: a\u{FFFD}b");
    }

    #[test]
    fn the_last_error_is_per_thread() {
        guard("concord_test", || Err(Failure::invalid("here")));
        std::thread::spawn(|| assert_eq!(last_error(), ""))
            .join()
            .unwrap();
        assert_eq!(last_error(), "concord_test: here");
    }

    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(concord_version()) };
        assert_eq!(
            v.to_str().unwrap(),
            concat!("concord ", env!("CARGO_PKG_VERSION"))
        );
    }
}
