//! Concord CUDA backend.
//!
//! Runs every op of the catalogue in exact mode from the shared kernel sources
//! (backends/kernels), compiled at run time by NVRTC for the device's architecture with the
//! options the numerics contract needs, cached on disk (`concord_kernels::code_cache`) and
//! launched through cudarc's driver API, loaded at run time. Nothing links against CUDA, so
//! the crate builds and its tests run without a driver or toolkit.
//!
//! [`probe`] first asks the driver library for its version through its own `sys` layer, and
//! only then lets cudarc near it (cudarc panics when libcuda or one of its symbols is
//! missing): a machine without a driver gets [`Error::Unavailable`] with the reason.
//! [`check_kernels`] compile-checks every kernel for a named architecture without a device.
//!
//! Status: the host side (launch sizes, argument lists, scratch) is the code OpenCL runs
//! bit-identically to the CPU on PoCL in CI; the CUDA path itself (module loading, copies,
//! launches) has not yet run on an NVIDIA GPU.
//!
//! All `unsafe` code lives in `sys` (libcuda version, libnvrtc) and `result` (cudarc calls).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod nvrtc;
mod program;
mod result;
mod sys;

use std::sync::Arc;

use concord_core::{Error, Result};
use concord_ops::{Backend, KernelMode};

pub use nvrtc::{
    check_kernels, compile_options, kernel_signatures, nvrtc_info, KernelCheck, NVRTC_PATH_ENV,
};

/// The oldest driver the cudarc bindings (`cuda-12020`) can load: CUDA 12.2.
const MIN_DRIVER_VERSION: i32 = 12020;

/// Picks the device: an index; 0 when unset.
pub const DEVICE_ENV: &str = "CONCORD_CUDA_DEVICE";

/// Opens the CUDA backend on the device `CONCORD_CUDA_DEVICE` names (default 0), or says why
/// it cannot run here: no driver library, a driver older than CUDA 12.2, no device, no NVRTC,
/// or a failure to compile or load the kernels. Never panics. Exact mode.
pub fn probe() -> Result<Arc<dyn Backend>> {
    probe_mode(KernelMode::Exact)
}

/// [`probe`] for kernels of `mode`: fast mode runs the matmuls on tensor cores (sm_80 and
/// newer; older devices run the same tiles without them).
pub fn probe_mode(mode: KernelMode) -> Result<Arc<dyn Backend>> {
    let unavailable = |reason: String| Error::Unavailable {
        backend: "cuda".into(),
        reason,
    };
    let version = sys::driver_version().map_err(unavailable)?;
    if version < MIN_DRIVER_VERSION {
        return Err(unavailable(format!(
            "the CUDA driver supports CUDA {}.{}; Concord needs 12.2 or newer",
            version / 1000,
            (version % 1000) / 10
        )));
    }
    let ordinal = match std::env::var(DEVICE_ENV) {
        Ok(v) if !v.is_empty() => v
            .parse::<usize>()
            .map_err(|_| unavailable(format!("{DEVICE_ENV}={v:?} is not a device index")))?,
        _ => 0,
    };
    // cudarc panics on a driver symbol it cannot find; the version check above should rule
    // that out, and this turns any remaining case into a reason instead of a crash.
    concord_kernels::guarded_open::open_guarded("cuda", "the CUDA driver bindings failed", || {
        backend::open(ordinal, version, mode)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without a driver (CI) the reason names libcuda; with one, the backend
    /// opens or says why not. Either way no panic.
    #[test]
    fn probe_reports_a_reason_or_a_backend() {
        match probe() {
            Ok(b) => assert_eq!(b.info().name, "cuda"),
            Err(Error::Unavailable { backend, reason }) => {
                assert_eq!(backend, "cuda");
                assert!(!reason.is_empty());
                println!("SKIP cuda: {reason}");
            }
            Err(other) => panic!("probe must report Unavailable, got {other}"),
        }
    }
}
