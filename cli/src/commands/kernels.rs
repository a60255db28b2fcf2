use crate::stdout::outln;
use clap::Subcommand;
use concord_core::{Error, Result};

/// Work with the shared kernel source (`backends/kernels`).
///
/// Examples:
///   concord kernels check --backend cuda --arch sm_90
///   concord kernels check --backend rocm --arch gfx942
///   concord kernels check --backend opencl
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    pub command: KernelsCommand,
}

#[derive(Subcommand, Debug)]
pub enum KernelsCommand {
    /// Compile every kernel for a target without running anything; one line per kernel.
    ///
    /// cuda compiles with NVRTC (found on the library search path, or CONCORD_NVRTC_PATH) for
    /// an sm_XX architecture, rocm with hiprtc for a gfxXXXX target, ascend with CANN's aclrtc
    /// for a dav-XXXX NPU architecture (found through ASCEND_HOME_PATH), opencl builds the programs
    /// on the OpenCL device that would be used. No GPU is needed for cuda and rocm.
    ///
    /// Examples:
    ///   concord kernels check --backend cuda --arch sm_90
    ///   concord kernels check --backend rocm --arch gfx90a
    ///   concord kernels check --backend ascend --arch dav-2201
    ///   concord kernels check --backend opencl
    #[command(verbatim_doc_comment)]
    Check {
        /// cuda, rocm, ascend or opencl.
        #[arg(long)]
        backend: String,
        /// Target architecture: sm_80, sm_90 (cuda, default sm_80); gfx90a, gfx908, gfx1030
        /// (rocm, default gfx90a); dav-2201 (ascend, the default: Atlas A2/A3); ignored for
        /// opencl.
        #[arg(long)]
        arch: Option<String>,
    },
}

pub fn run(args: Args) -> Result<()> {
    let KernelsCommand::Check { backend, arch } = args.command;
    let results: Vec<(String, bool, String)> = match backend.as_str() {
        "cuda" => {
            let arch = arch.unwrap_or_else(|| "sm_80".into());
            concord_backend_cuda::check_kernels(&arch)?
                .into_iter()
                .map(|k| (k.op, k.ok, k.message))
                .collect()
        }
        "rocm" => {
            let arch = arch.unwrap_or_else(|| "gfx90a".into());
            // Some hiprtc versions crash on targets they do not know: compile in a child process
            // when the helper binary was built alongside this one.
            let checks = match concord_backend_rocm::helper_binary() {
                Ok(_) => concord_backend_rocm::check_kernels_isolated(&arch)?,
                Err(e) => {
                    tracing::warn!("compiling in this process ({e})");
                    concord_backend_rocm::check_kernels(&arch)?
                }
            };
            checks
                .into_iter()
                .map(|k| (k.op, k.ok, k.message))
                .collect()
        }
        "ascend" => {
            // Without CANN this is `Error::Unavailable` naming where libascendcl was looked
            // for: printed by main, exit status non-zero.
            let arch = arch.unwrap_or_else(|| "dav-2201".into());
            concord_backend_ascend::check_kernels(&arch)?
                .into_iter()
                .map(|k| (k.op, k.ok, k.message))
                .collect()
        }
        "opencl" => concord_backend_opencl::check_kernels()?
            .into_iter()
            .map(|(op, r)| {
                (
                    op.name().to_string(),
                    r.is_ok(),
                    r.err().unwrap_or_default(),
                )
            })
            .collect(),
        other => {
            return Err(Error::invalid(format!(
                "kernels check takes cuda, rocm, ascend or opencl, not '{other}'"
            )))
        }
    };
    let failed = results.iter().filter(|(_, ok, _)| !ok).count();
    for (op, ok, message) in &results {
        if *ok {
            outln!("ok     {op}")?;
        } else {
            outln!("FAILED {op}: {}", message.trim())?;
        }
    }
    outln!(
        "{} kernels, {} compiled, {failed} failed",
        results.len(),
        results.len() - failed
    )?;
    if failed > 0 {
        return Err(Error::Backend {
            backend: backend.clone(),
            message: format!("{failed} kernels failed to compile"),
        });
    }
    Ok(())
}
