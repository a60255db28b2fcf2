//! The backend registry: names → probes. Probing never panics; an absent driver is
//! `Error::Unavailable` with the reason.

use std::sync::Arc;

use concord_core::{Error, Result};
use concord_ops::{Backend, KernelMode};

/// Every backend Concord knows, in report order.
pub const BACKEND_NAMES: &[&str] = &["cpu", "opencl", "cuda", "rocm", "ascend"];

/// Opens the backend called `name` in exact mode.
pub fn open_backend(name: &str) -> Result<Arc<dyn Backend>> {
    open_backend_mode(name, KernelMode::Exact)
}

/// Opens the backend called `name` for kernels of `mode`. A backend without a fast path
/// (cpu) opens in exact mode whatever `mode` asks; `info().mode` says which it runs.
pub fn open_backend_mode(name: &str, mode: KernelMode) -> Result<Arc<dyn Backend>> {
    let _ = mode; // only the device backends have a fast mode
    match name {
        "cpu" => concord_backend_cpu::probe(),
        #[cfg(feature = "opencl")]
        "opencl" => concord_backend_opencl::probe_mode(mode),
        #[cfg(feature = "cuda")]
        "cuda" => concord_backend_cuda::probe_mode(mode),
        #[cfg(feature = "rocm")]
        "rocm" => concord_backend_rocm::probe_mode(mode),
        #[cfg(feature = "ascend")]
        "ascend" => concord_backend_ascend::probe_mode(mode),
        known if BACKEND_NAMES.contains(&known) => Err(Error::Unavailable {
            backend: known.to_string(),
            reason: format!(
                "this build of concord-runtime leaves it out: enable the `{known}` cargo \
                 feature (or `all-backends`)"
            ),
        }),
        other => Err(Error::invalid(format!(
            "unknown backend '{other}' (known: {})",
            BACKEND_NAMES.join(", ")
        ))),
    }
}
