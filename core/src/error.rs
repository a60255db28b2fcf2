use std::path::PathBuf;

/// Result alias used across Concord.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure Concord reports. Variants carry enough context to act on without a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A backend cannot run here (no driver, no device, not built yet); `reason` says why.
    #[error("backend {backend} unavailable: {reason}")]
    Unavailable {
        /// Backend name (`cpu`, `opencl`, `cuda`, `rocm`, `ascend`).
        backend: String,
        /// Human readable cause, e.g. "libcuda.so.1 not found on the library search path".
        reason: String,
    },
    /// A caller passed something malformed (shape, dtype, flag value, id out of range).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The operation is defined but this backend or dtype combination does not implement it.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A checkpoint or config does not match what the model needs.
    #[error("model error: {0}")]
    Model(String),
    /// An error reported by a vendor runtime (CUDA, HIP, OpenCL, CANN) with its code.
    #[error("{backend} error: {message}")]
    Backend {
        /// Backend name.
        backend: String,
        /// Vendor function and error code, decoded where possible.
        message: String,
    },
    /// File system failure, with the file involved.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The caller asked to stop (e.g. a progress callback returned "cancel").
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
    /// Shorthand for [`Error::Model`].
    pub fn model(msg: impl Into<String>) -> Self {
        Error::Model(msg.into())
    }
    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Error::Unsupported(msg.into())
    }
    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
