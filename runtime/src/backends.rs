//! The backend registry: names → probes. Probing never panics; an absent driver is
//! `Error::Unavailable` with the reason.

use std::sync::Arc;

use concord_core::{Error, Result};
use concord_ops::Backend;

/// Every backend Concord knows, in report order.
pub const BACKEND_NAMES: &[&str] = &["cpu", "opencl", "cuda", "rocm", "ascend"];

/// Opens the backend called `name`.
pub fn open_backend(name: &str) -> Result<Arc<dyn Backend>> {
    match name {
        "cpu" => concord_backend_cpu::probe(),
        "opencl" => concord_backend_opencl::probe(),
        "cuda" => concord_backend_cuda::probe(),
        "rocm" => concord_backend_rocm::probe(),
        "ascend" => concord_backend_ascend::probe(),
        other => Err(Error::invalid(format!(
            "unknown backend '{other}' (known: {})",
            BACKEND_NAMES.join(", ")
        ))),
    }
}
