//! The test-only stand-ins of NCCL and HCCL (comm/standin/nccl_standin.c and hccl_standin.c,
//! over the shared rendezvous core standin_core.h): ranks as threads of one process, host
//! memory as device memory, for the transports' tests here and the parallel layouts' tests in
//! tests/. Built on demand with the host C compiler (`$CC`, else `cc`), like the Ascend
//! backend's ACL stand-in; never named `libnccl.so` or `libhccl.so`, so no search finds them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use concord_core::{Error, Result};

use crate::communicator::Communicator;
use crate::hccl::{HcclCommunicator, HcclLibrary};
use crate::in_process::InProcessGroup;
use crate::nccl::{Flavour, NcclCommunicator, NcclLibrary};
use crate::staging::{DeviceStaging, HostStaging};

/// The NCCL stand-in's C source in this repository.
pub fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("standin/nccl_standin.c")
}

/// The HCCL stand-in's C source in this repository.
pub fn hccl_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("standin/hccl_standin.c")
}

/// Compiles the NCCL stand-in into `dir` (a file per process, so parallel test binaries do
/// not race) and returns the library's path.
pub fn build(dir: &Path) -> Result<PathBuf> {
    compile(&source(), "nccl", dir)
}

/// Compiles the HCCL stand-in into `dir`, as [`build`] does the NCCL one.
pub fn build_hccl(dir: &Path) -> Result<PathBuf> {
    compile(&hccl_source(), "hccl", dir)
}

fn compile(source: &Path, name: &str, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::invalid(format!("create {}: {e}", dir.display())))?;
    let out = dir.join(format!(
        "libconcord_{name}_standin-{}.so",
        std::process::id()
    ));
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&compiler)
        .args([
            "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-o",
        ])
        .arg(&out)
        .arg(source)
        .arg("-lpthread")
        .output()
        .map_err(|e| Error::invalid(format!("run the C compiler {compiler}: {e}")))?;
    if !output.status.success() {
        return Err(Error::invalid(format!(
            "{compiler} could not build {}: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(out)
}

/// `size` NCCL communicators on the stand-in at `library`, one per rank, each on its own
/// [`HostStaging`], bootstrapped over an [`InProcessGroup`] (the unique id broadcast as MPI
/// would in a job). Collectives wait `timeout`.
pub fn ranks(library: &Path, size: usize, timeout: Duration) -> Result<Vec<NcclCommunicator>> {
    let library = Arc::new(NcclLibrary::open_first(&[library.to_path_buf()]).map_err(
        |reason| Error::Unavailable {
            backend: "nccl".into(),
            reason,
        },
    )?);
    let bootstrap = InProcessGroup::ranks(size, timeout)?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = bootstrap
            .into_iter()
            .map(|rank| {
                let library = Arc::clone(&library);
                scope.spawn(move || {
                    let staging: Arc<dyn DeviceStaging> = Arc::new(HostStaging::new());
                    let bootstrap: &dyn Communicator = &rank;
                    NcclCommunicator::bootstrap(library, Flavour::Nccl, bootstrap, staging, timeout)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| Error::invalid("a rank thread panicked while joining"))?
            })
            .collect()
    })
}

/// `size` HCCL communicators on the stand-in at `library`, as [`ranks`] makes NCCL ones.
pub fn hccl_ranks(library: &Path, size: usize, timeout: Duration) -> Result<Vec<HcclCommunicator>> {
    let library = Arc::new(HcclLibrary::open_first(&[library.to_path_buf()]).map_err(
        |reason| Error::Unavailable {
            backend: "hccl".into(),
            reason,
        },
    )?);
    let bootstrap = InProcessGroup::ranks(size, timeout)?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = bootstrap
            .into_iter()
            .map(|rank| {
                let library = Arc::clone(&library);
                scope.spawn(move || {
                    let staging: Arc<dyn DeviceStaging> = Arc::new(HostStaging::new());
                    HcclCommunicator::bootstrap(library, &rank, staging, timeout)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| Error::invalid("a rank thread panicked while joining"))?
            })
            .collect()
    })
}
