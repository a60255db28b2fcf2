//! Opening a device backend without ever panicking: vendor bindings can panic on a missing
//! symbol or an unexpected driver answer; a probe must turn that, and every error, into
//! `Error::Unavailable` with the reason.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use concord_core::{Error, Result};
use concord_ops::Backend;

/// Runs `open` for backend `name`: its backend, or `Unavailable` with the error's text or, for
/// a panic, `"{what}: {panic message}"`.
pub fn open_guarded<B: Backend + 'static>(
    name: &str,
    what: &str,
    open: impl FnOnce() -> Result<B>,
) -> Result<Arc<dyn Backend>> {
    let unavailable = |reason: String| Error::Unavailable {
        backend: name.into(),
        reason,
    };
    match catch_unwind(AssertUnwindSafe(open)) {
        Ok(Ok(backend)) => Ok(Arc::new(backend)),
        Ok(Err(Error::Unavailable { reason, .. })) => Err(unavailable(reason)),
        Ok(Err(e)) => Err(unavailable(e.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(unavailable(format!("{what}: {message}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_or_an_error_becomes_unavailable_with_its_text() {
        let panicked = open_guarded::<concord_backend_none::Never>("x", "opening failed", || {
            panic!("symbol missing")
        });
        match panicked {
            Err(Error::Unavailable { backend, reason }) => {
                assert_eq!(backend, "x");
                assert_eq!(reason, "opening failed: symbol missing");
            }
            _ => panic!("expected Unavailable"),
        }
        let failed = open_guarded::<concord_backend_none::Never>("x", "unused", || {
            Err(Error::invalid("bad device"))
        });
        assert!(
            matches!(failed, Err(Error::Unavailable { reason, .. }) if reason.contains("bad device"))
        );
    }

    /// A backend type that is never built (the tests only take the failure paths).
    mod concord_backend_none {
        pub enum Never {}
        impl concord_ops::Backend for Never {
            fn info(&self) -> &concord_ops::BackendInfo {
                match *self {}
            }
            fn supports(
                &self,
                _: concord_ops::OpKind,
                _: concord_core::DType,
            ) -> concord_ops::Support {
                match *self {}
            }
            fn alloc(&self, _: usize) -> concord_core::Result<concord_ops::Buffer> {
                match *self {}
            }
            fn write(
                &self,
                _: &concord_ops::Buffer,
                _: usize,
                _: &[u8],
            ) -> concord_core::Result<()> {
                match *self {}
            }
            fn read(
                &self,
                _: &concord_ops::Buffer,
                _: usize,
                _: &mut [u8],
            ) -> concord_core::Result<()> {
                match *self {}
            }
            fn prepare(&self, _: &concord_ops::Op) -> concord_core::Result<concord_ops::Prepared> {
                match *self {}
            }
            fn launch(
                &self,
                _: &concord_ops::Prepared,
                _: &[concord_ops::TensorArg],
                _: &[concord_ops::TensorArg],
            ) -> concord_core::Result<()> {
                match *self {}
            }
            fn synchronize(&self) -> concord_core::Result<()> {
                match *self {}
            }
        }
    }
}
