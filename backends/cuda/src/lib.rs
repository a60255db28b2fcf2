//! Concord CUDA backend.
//!
//! Device execution is not implemented yet: [`probe`] looks for the driver (libcuda, opened at
//! run time) and reports the backend unavailable with the precise reason, so the registry, the
//! CLI and the conformance report can name it without failing. What is implemented is the
//! compile check of the shared kernel sources (backends/kernels) with NVRTC, also opened at run
//! time: [`check_kernels`]. Nothing links against CUDA, so the crate builds without a toolkit.
//!
//! All `unsafe` code lives in `sys`, the thin layer over libcuda and libnvrtc.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod nvrtc;
mod sys;

use std::sync::Arc;

use concord_core::{Error, Result};
use concord_ops::Backend;

pub use nvrtc::{check_kernels, compile_options, nvrtc_info, KernelCheck, NVRTC_PATH_ENV};

/// Opens the CUDA backend, or says why it cannot run here: the driver library is missing, or
/// (with a driver) device execution is not implemented yet.
pub fn probe() -> Result<Arc<dyn Backend>> {
    let reason = match sys::driver_present() {
        Err(reason) => reason,
        Ok(()) => {
            "CUDA device execution is not implemented yet; kernels compile-checked only".to_string()
        }
    };
    Err(Error::Unavailable {
        backend: "cuda".into(),
        reason,
    })
}
