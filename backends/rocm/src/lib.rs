//! Concord ROCm (HIP) backend.
//!
//! Device execution is not implemented yet: [`probe`] opens the HIP runtime (libamdhip64,
//! loaded at run time), initialises it and counts devices, then reports the backend
//! unavailable with the precise reason, so the registry, the CLI and the conformance report
//! can name it without failing. What is implemented is the compile check of the shared kernel
//! sources (backends/kernels) with hiprtc, also loaded at run time: [`check_kernels`] in
//! process, [`check_kernels_isolated`] in a child process for targets that crash hiprtc.
//! Nothing links against ROCm, so the crate builds without it.
//!
//! All `unsafe` code lives in `sys` (raw FFI types, library loading) and `result` (one safe
//! function per vendor call).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod elf;
mod hiprtc;
#[allow(unsafe_code)]
mod result;
#[allow(unsafe_code)]
mod sys;

use std::sync::Arc;

use concord_core::{Error, Result};
use concord_ops::Backend;

pub use hiprtc::{
    check_kernels, check_kernels_isolated, check_kernels_isolated_with, check_kernels_streaming,
    code_object, compile_options, helper_binary, helper_protocol, hiprtc_info, KernelCheck,
    HIPRTC_CHECK_BIN, HIPRTC_CHECK_BIN_ENV, HIPRTC_PATH_ENV,
};

/// Opens the ROCm (HIP) backend, or says why it cannot run here: libamdhip64 is missing,
/// `hipInit` fails, there is no HIP device, or (with a device) device execution is not
/// implemented yet. Always [`Error::Unavailable`]; never panics.
pub fn probe() -> Result<Arc<dyn Backend>> {
    Err(Error::Unavailable {
        backend: "rocm".into(),
        reason: probe_reason(),
    })
}

fn probe_reason() -> String {
    let hip = match result::Hip::load() {
        Ok(hip) => hip,
        Err(reason) => return reason,
    };
    if let Err(e) = hip.init() {
        return format!("hipInit: {}", e.text);
    }
    match hip.device_count() {
        Ok(n) if n > 0 => {
            let driver = hip
                .driver_version()
                .map(|v| format!(" (HIP driver {v}, {n} device(s))"))
                .unwrap_or_default();
            format!(
                "HIP device execution is not implemented yet; kernels compile-checked only{driver}"
            )
        }
        Ok(_) => format!("no HIP device (libamdhip64 at {})", hip.path.display()),
        Err(e) => format!("no HIP device ({e})"),
    }
}
