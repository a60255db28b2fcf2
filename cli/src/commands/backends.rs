use crate::stdout::outln;
use concord_core::Result;

/// Prints one line per backend: available with its device, or unavailable with the reason;
/// then one line per collective library (MPI, NCCL, RCCL, HCCL) the same way.
pub fn run() -> Result<()> {
    for name in concord_runtime::BACKEND_NAMES {
        match concord_runtime::open_backend(name) {
            Ok(b) => {
                let info = b.info();
                outln!("{name:8} available    {} ({})", info.device, info.driver)?;
            }
            Err(e) => outln!("{name:8} unavailable  {e}")?,
        }
    }
    outln!("communicators:")?;
    for probe in concord_comm::vendor::probe_all() {
        let name = probe.name;
        match probe.outcome {
            Ok(version) => outln!("{name:8} available    {version}")?,
            Err(why) => outln!("{name:8} unavailable  {why}")?,
        }
    }
    Ok(())
}
