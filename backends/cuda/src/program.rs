//! One op's program for the device: the shared source compiled by NVRTC to a cubin for the
//! device's architecture with the contract's options, kept in the on-disk code cache
//! (`concord_kernels::code_cache`) under a key of source, options, NVRTC and driver versions
//! and architecture, then loaded into the context.
use concord_core::{Error, Result};
use concord_kernels::code_cache::{cached_binary, CacheKey};
use concord_kernels::{Program, Target};

use crate::nvrtc::compile_options;
use crate::result::{Device, Module};
use crate::sys::{Compiled, Nvrtc};

/// What decides a program's bytes besides its source and options.
pub(crate) struct Toolchain {
    pub nvrtc: Nvrtc,
    /// `nvrtcVersion`, as "12.9".
    pub nvrtc_version: String,
    /// `cuDriverGetVersion`, as "12080".
    pub driver_version: String,
    /// The device's architecture, `sm_90`.
    pub arch: String,
}

/// Compiles (or finds in the cache) and loads `program`.
pub(crate) fn load(device: &Device, tools: &Toolchain, program: Program) -> Result<Module> {
    let src = program.source(Target::Cuda);
    let op = program.name();
    let options = compile_options(&tools.arch);
    let joined = options.join(" ");
    let key = CacheKey {
        backend: "cuda",
        name: &op,
        arch: &tools.arch,
        extension: "cubin",
        inputs: &[
            src.as_bytes(),
            joined.as_bytes(),
            tools.nvrtc_version.as_bytes(),
            tools.driver_version.as_bytes(),
        ],
    };
    let binary = cached_binary(&key, || {
        let file = format!("{op}.cu");
        match tools.nvrtc.compile(&src, &file, &options, true) {
            Ok(Compiled::Ok { binary, .. }) if !binary.is_empty() => Ok(binary),
            Ok(Compiled::Ok { .. }) => Err(backend_error(format!(
                "{op}: NVRTC produced an empty cubin for {}",
                tools.arch
            ))),
            Ok(Compiled::Failed { log }) => Err(backend_error(format!(
                "{op}: NVRTC could not compile for {}: {log}",
                tools.arch
            ))),
            Err(e) => Err(backend_error(format!("{op}: {e}"))),
        }
    })?;
    tracing::debug!(
        program = %op,
        path = %binary.path.display(),
        cached = binary.hit,
        "cuda module"
    );
    device.load(&binary.path, &program.kernel_names())
}

fn backend_error(message: String) -> Error {
    Error::Backend {
        backend: "cuda".into(),
        message,
    }
}
