//! Concord Ascend (CANN) backend: every op of the catalogue from the shared kernel sources
//! (backends/kernels, assembled for [`concord_kernels::Target::Ascend`] with one
//! `__global__ __aicore__` entry point per kernel), compiled at run time by aclrtc for the
//! `--npu-arch` of the device's SoC, cached on disk (`concord_kernels::code_cache`), loaded
//! with `aclrtBinaryLoadFromData` and launched on one stream with the argument-list API
//! (`aclrtKernelArgsInit`/`Append`/`Finalize`, `aclrtLaunchKernelWithConfig`). Fast mode
//! ([`probe_mode`]) hands BF16 `matmul` to `aclnnMatmul` and the Dense BF16 routed experts'
//! projections to `aclnnGroupedMatmulV2` (CANN's operator library, loaded at run time); the
//! rest stays on the exact kernels (see `fast`).
//!
//! **Status: not verified on Ascend hardware.** Nothing here has run on an NPU. What is tested
//! is the host side end to end against a test-only stand-in of the ACL C API
//! (`backends/ascend/standin`, a plumbing test, not Ascend hardware): library loading, every
//! binding the backend calls, memory, streams, argument packing, launches, the code cache and
//! the error paths, with results bit-identical to the CPU backend. Nothing links against CANN,
//! so the crate builds without it.
//!
//! All `unsafe` code lives in `sys` and `aclnn_sys` (raw FFI types, library loading) and
//! `result` and `aclnn_result` (one safe function per ACL or aclnn call).
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
mod aclnn_result;
#[allow(unsafe_code)]
mod aclnn_sys;
mod arch;
mod backend;
mod fast;
#[allow(unsafe_code)]
mod result;
pub mod source;
#[allow(unsafe_code)]
mod sys;

use std::path::Path;
use std::sync::Arc;

use concord_core::{Error, Result};
use concord_kernels::{all_programs, Program};
use concord_ops::{Backend, KernelMode};

pub use aclnn_sys::{NNOPBASE_LIBRARY, OPAPI_LIBRARY};
pub use arch::{npu_arch, KNOWN_ARCHS};
pub use backend::{compile_options, ARCH_ENV, DEVICE_ENV};
pub use fast::FAST_OPS;
pub use sys::{ACLRTC_LIBRARY, ACL_LIBRARY, DEFAULT_HOME, HOME_ENVS};

/// Opens the Ascend backend on the device `CONCORD_ASCEND_DEVICE` names (an index, default 0),
/// or says why it cannot run here: libascendcl is missing or broken (the reason names the
/// file or every place looked in), lacks a symbol, `aclInit` fails, there is no device, the
/// SoC has no known `--npu-arch` (`CONCORD_ASCEND_ARCH` overrides it), aclrtc is missing, or
/// the first program fails to compile or load. Every failure is [`Error::Unavailable`];
/// never panics.
pub fn probe() -> Result<Arc<dyn Backend>> {
    probe_mode(KernelMode::Exact)
}

/// [`probe`] for kernels of `mode`. Fast mode also loads CANN's operator library
/// (`libopapi.so`, `libnnopbase.so`, from the same search path as libascendcl); when either
/// is missing or lacks a symbol, fast mode is [`Error::Unavailable`] with that reason, and
/// exact mode is unaffected.
pub fn probe_mode(mode: KernelMode) -> Result<Arc<dyn Backend>> {
    match mode {
        KernelMode::Exact => guarded(backend::open_default),
        KernelMode::Fast => guarded(|| {
            let exact = backend::open_default()?;
            backend::open_fast(exact, None)
        }),
    }
}

/// [`probe`] with the ACL library at exactly `library` instead of the search path. The tests
/// use it to point the backend at the ACL stand-in; the normal probe never looks there.
pub fn probe_library(library: &Path) -> Result<Arc<dyn Backend>> {
    guarded(|| backend::open_library(library))
}

/// Fast mode with ACL at exactly `library` and aclnn's operators and descriptors at exactly
/// `opapi` and `nnopbase` (the tests' stand-ins; the normal probe never looks there).
pub fn probe_library_fast(
    library: &Path,
    opapi: &Path,
    nnopbase: &Path,
) -> Result<Arc<dyn Backend>> {
    guarded(|| {
        let exact = backend::open_library(library)?;
        backend::open_fast(exact, Some((opapi, nnopbase)))
    })
}

/// Runs `open`, turning every error and any panic into [`Error::Unavailable`].
fn guarded<B: Backend + 'static>(open: impl FnOnce() -> Result<B>) -> Result<Arc<dyn Backend>> {
    concord_kernels::guarded_open::open_guarded("ascend", "panicked while opening the device", open)
}

/// The result of compiling one program.
#[derive(Debug, Clone)]
pub struct KernelCheck {
    /// The program (`add`, `rms_norm`).
    pub op: String,
    /// Whether aclrtc compiled it.
    pub ok: bool,
    /// The compile log or error when it did not.
    pub message: String,
}

/// The exact programs the Ascend backend builds.
pub fn ascend_programs() -> Vec<Program> {
    all_programs()
        .into_iter()
        .filter(|p| p.mode == KernelMode::Exact)
        .collect()
}

/// Compiles every exact program with aclrtc for `arch` (`dav-2201`) without a device. Fails
/// (never panics) when libascendcl or aclrtc cannot be loaded, naming where it looked.
pub fn check_kernels(arch: &str) -> Result<Vec<KernelCheck>> {
    let acl = result::Acl::load().map_err(|e| Error::Unavailable {
        backend: "ascend".into(),
        reason: e,
    })?;
    check_with(&acl, arch)
}

/// [`check_kernels`] with the ACL library at exactly `library` (the tests' stand-in).
pub fn check_kernels_library(library: &Path, arch: &str) -> Result<Vec<KernelCheck>> {
    let acl = result::Acl::load_from(library).map_err(|e| Error::Unavailable {
        backend: "ascend".into(),
        reason: e,
    })?;
    check_with(&acl, arch)
}

fn check_with(acl: &result::Acl, arch: &str) -> Result<Vec<KernelCheck>> {
    if !arch::known(arch) {
        return Err(Error::invalid(format!(
            "--arch {arch:?} is not one of {}",
            KNOWN_ARCHS.join(", ")
        )));
    }
    acl.rtc_status().map_err(|reason| Error::Unavailable {
        backend: "ascend".into(),
        reason,
    })?;
    let options = compile_options(arch);
    Ok(ascend_programs()
        .into_iter()
        .map(|program| {
            let name = program.name();
            let outcome = source::program_source(program)
                .map_err(|e| e.to_string())
                .and_then(|src| acl.compile(&src, &name, &options));
            KernelCheck {
                op: name,
                ok: outcome.is_ok(),
                message: outcome.err().unwrap_or_default(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_reports_unavailable_with_a_reason() {
        match super::probe() {
            Err(concord_core::Error::Unavailable { backend, reason }) => {
                assert_eq!(backend, "ascend");
                assert!(reason.contains("libascendcl"), "{reason}");
            }
            Err(other) => panic!("unexpected error {other}"),
            // A machine with CANN and a device opens it: nothing to check here.
            Ok(_) => {}
        }
    }
}
