//! Backends: what exists, and whether one can run here.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use concord_core::Error;
use concord_runtime::{open_backend, BACKEND_NAMES};

use crate::args::{copy_truncated, str_arg};
use crate::status::{guard, guard_value, Failure, Status};

/// `BACKEND_NAMES` as C strings, built once and kept for the life of the process.
fn names() -> &'static [CString] {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    NAMES.get_or_init(|| {
        BACKEND_NAMES
            .iter()
            .map(|n| CString::new(*n).expect("backend names have no NUL"))
            .collect()
    })
}

/// Number of backends Concord knows (whether or not they can run here), for
/// `concord_backend_name`.
///
/// Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn concord_backend_count() -> usize {
    guard_value("concord_backend_count", 0, || Ok(BACKEND_NAMES.len()))
}

/// Name of backend `index` (`0 ≤ index < concord_backend_count()`), e.g. `"cpu"`, `"cuda"`: a
/// static string, never freed. NULL when `index` is out of range (see `concord_last_error()`).
///
/// Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn concord_backend_name(index: usize) -> *const c_char {
    guard_value("concord_backend_name", std::ptr::null(), || {
        names().get(index).map(|n| n.as_ptr()).ok_or_else(|| {
            Failure::invalid(format!(
                "backend index {index} is out of range (there are {})",
                BACKEND_NAMES.len()
            ))
        })
    })
}

/// Probes backend `name` (driver, device): `CONCORD_OK` when it can run here, otherwise
/// `CONCORD_ERR_UNAVAILABLE` with the reason. The reason (or `""` on success) is copied into
/// `reason_buf`, truncated to `reason_len - 1` bytes at a UTF-8 character boundary and always
/// NUL-terminated; `reason_buf` may be NULL (with any `reason_len`) to skip the copy.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL, non-UTF-8 or unknown name),
/// `CONCORD_ERR_BACKEND` (the driver is there but failed).
///
/// Thread safety: any thread; probing may load driver libraries.
///
/// # Safety
/// `name` must be a NUL-terminated string; a non-NULL `reason_buf` must be writable for
/// `reason_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn concord_backend_probe(
    name: *const c_char,
    reason_buf: *mut c_char,
    reason_len: usize,
) -> Status {
    guard("concord_backend_probe", || {
        // SAFETY: NUL-terminated if non-NULL (caller's contract).
        let name = unsafe { str_arg(name, "name") }?;
        let unavailable = match open_backend(name) {
            Ok(_) => None,
            Err(Error::Unavailable { reason, .. }) => Some(reason),
            Err(e) => return Err(e.into()),
        };
        let reason = unavailable.as_deref().unwrap_or("");
        // SAFETY: writable for reason_len bytes if non-NULL (caller's contract).
        unsafe { copy_truncated(reason, reason_buf, reason_len) };
        match unavailable {
            None => Ok(Status::ConcordOk),
            Some(reason) => Err(Failure::new(
                Status::ConcordErrUnavailable,
                format!("backend {name} unavailable: {reason}"),
            )),
        }
    })
}
