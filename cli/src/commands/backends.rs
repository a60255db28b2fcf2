use crate::stdout::outln;
use concord_core::Result;

/// Prints one line per backend: available with its device, or unavailable with the reason.
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
    Ok(())
}
