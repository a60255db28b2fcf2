//! Rust errors and panics as Python exceptions: every call into the runtime goes through
//! [`guarded`], so a Python caller sees `concord.ConcordError` with the runtime's message (which
//! names the path, tensor or field at fault) and never a panic unwinding into the interpreter.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyRuntimeError;
use pyo3::{create_exception, PyErr};

create_exception!(
    _concord,
    ConcordError,
    PyRuntimeError,
    "An error from the Concord runtime; the message names the file, tensor or argument at fault."
);

/// Converts a runtime error into `ConcordError` carrying its message.
pub fn to_py(error: concord_core::Error) -> PyErr {
    ConcordError::new_err(error.to_string())
}

/// Runs `work`, turning its error into `ConcordError` and a panic into `ConcordError` too (a
/// panic is a bug in Concord; the interpreter must survive it).
pub fn guarded<T>(work: impl FnOnce() -> concord_core::Result<T>) -> Result<T, PyErr> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result.map_err(to_py),
        Err(payload) => Err(ConcordError::new_err(format!(
            "internal error (please report it): {}",
            panic_message(payload.as_ref())
        ))),
    }
}

/// The text a panic was raised with, when it has one.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}
