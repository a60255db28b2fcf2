//! Concord ROCm (HIP) backend: every op of the catalogue from the shared kernel sources
//! (backends/kernels, assembled by `concord-kernels` for [`concord_kernels::Target::Hip`]),
//! compiled at run time by hiprtc for the device's gfx target with the options the numerics
//! contract needs, cached on disk (`concord_kernels::code_cache`), loaded with
//! `hipModuleLoadData` and launched with `hipModuleLaunchKernel` on the null stream. The host
//! side (launch sizes, argument lists, scratch) is `concord_kernels::host`, shared with the
//! OpenCL and CUDA backends; each launch is checked against the parameters the code object's
//! metadata declares.
//!
//! **Status: implemented, not verified on AMD hardware.** No AMD GPU has run this code: module
//! loading, copies, launches and the bit-exactness of the results are untested. What runs
//! without a GPU is tested: [`probe`] loads the HIP runtime (libamdhip64, opened at run time),
//! initialises it and counts devices, and reports the backend unavailable with the precise
//! reason when it cannot run; the compile check of every kernel with hiprtc ([`check_kernels`]
//! in process, [`check_kernels_isolated`] in a child process for targets that crash hiprtc);
//! the code objects' kernel metadata. Nothing links against ROCm, so the crate builds without
//! it.
//!
//! All `unsafe` code lives in `sys` (raw FFI types, library loading) and `result` (one safe
//! function per vendor call).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod arch;
mod backend;
mod elf;
mod hiprtc;
mod metadata;
#[allow(unsafe_code)]
mod result;
#[allow(unsafe_code)]
mod sys;

use std::sync::Arc;

use concord_core::Result;
use concord_ops::{Backend, KernelMode};

pub use backend::{ARCH_ENV, DEVICE_ENV};
pub use hiprtc::{
    check_kernels, check_kernels_isolated, check_kernels_isolated_with, check_kernels_streaming,
    code_object, compile_options, helper_binary, helper_protocol, hiprtc_info, KernelCheck,
    HIPRTC_CHECK_BIN, HIPRTC_CHECK_BIN_ENV, HIPRTC_PATH_ENV,
};
pub use metadata::{kernel_params, ParamKind};

/// Opens the ROCm (HIP) backend on the device `CONCORD_ROCM_DEVICE` names (an index,
/// default 0), or says why it cannot run here: libamdhip64 is missing, `hipInit` fails, there
/// is no HIP device, the device's gfx target cannot be read (`CONCORD_HIP_ARCH` overrides
/// it), hiprtc is missing, or the first program fails to compile or load. Every failure is
/// [`concord_core::Error::Unavailable`] with the reason; never panics (a panic inside the vendor libraries'
/// callers is caught and reported as the reason).
pub fn probe() -> Result<Arc<dyn Backend>> {
    probe_mode(KernelMode::Exact)
}

/// [`probe`] for kernels of `mode`: fast mode runs the matmuls as work-group tiles
/// (common/tile_gemm.h) with the portable MMA step (no MFMA instructions yet).
pub fn probe_mode(mode: KernelMode) -> Result<Arc<dyn Backend>> {
    concord_kernels::guarded_open::open_guarded("rocm", "panicked while opening the device", || {
        backend::open_default(mode)
    })
}
