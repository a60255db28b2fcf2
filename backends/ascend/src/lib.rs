//! Concord Ascend (CANN) backend.
//!
//! Not implemented yet: probing reports the backend unavailable with that reason, so the
//! registry, the CLI and the conformance report can name it without failing.
#![forbid(unsafe_code)]

use std::sync::Arc;

use concord_core::{Error, Result};
use concord_ops::Backend;

/// Opens the Ascend (CANN) backend, or says why it cannot run here.
pub fn probe() -> Result<Arc<dyn Backend>> {
    Err(Error::Unavailable {
        backend: "ascend".into(),
        reason: "the Ascend (CANN) backend is not implemented yet in this build".into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_reports_unavailable_with_a_reason() {
        match super::probe() {
            Err(concord_core::Error::Unavailable { backend, reason }) => {
                assert_eq!(backend, "ascend");
                assert!(!reason.is_empty());
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("stub backend must not probe successfully"),
        }
    }
}
