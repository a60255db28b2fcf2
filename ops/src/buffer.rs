use std::any::Any;

use concord_core::{Error, Result};

/// Backend-owned memory behind a [`Buffer`]. Dropping it frees the device memory.
pub trait DeviceStorage: Any + Send + Sync {
    /// For the owning backend to recover its concrete type.
    fn as_any(&self) -> &dyn Any;
    /// Name of the backend that allocated it, for error messages.
    fn backend_name(&self) -> &'static str;
}

/// A block of device memory of a fixed size. Freed when dropped.
pub struct Buffer {
    len: usize,
    storage: Box<dyn DeviceStorage>,
}

impl Buffer {
    /// Wraps backend storage of `len` bytes. Called by backends only.
    pub fn new(len: usize, storage: Box<dyn DeviceStorage>) -> Self {
        Buffer { len, storage }
    }
    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True for a zero-byte buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The backend storage, to be downcast by the backend that made it.
    pub fn storage(&self) -> &dyn DeviceStorage {
        self.storage.as_ref()
    }
    /// `Ok` when `len` bytes at byte `offset` lie inside the buffer: the check every
    /// backend's `write` and `read` make before copying.
    pub fn check_range(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::invalid(format!(
                "copy of {len} bytes at offset {offset} outside a buffer of {} bytes",
                self.len
            ))),
        }
    }
    /// Whether two buffers are the same allocation.
    pub fn same_as(&self, other: &Buffer) -> bool {
        std::ptr::eq(self, other)
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Buffer({} bytes on {})",
            self.len,
            self.storage.backend_name()
        )
    }
}
