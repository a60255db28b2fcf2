//! Reuse of op outputs' memory from one op (and one step) to the next.
//!
//! A decode step allocates a fresh output for each of its ~100 launches and frees it a few
//! launches later; on the CPU backend each is a zero-filled heap allocation and a free (with a
//! lock and a boxed storage), about a tenth of the demo model's decode step outside its
//! kernels. The executor keeps the small outputs that ops no longer need here, by size, and
//! hands them to the next op that wants that many bytes. Op outputs' contents are unspecified
//! (`Backend::alloc`) and every op writes all of its output, so reuse never changes a bit.
//!
//! Only the CPU backend's outputs are pooled: a device backend's queue may still be reading a
//! dropped buffer, and its allocator already caches.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

use concord_ops::{Buffer, DeviceStorage};

/// Largest output kept: decode steps' activations are far smaller, while a long prompt's
/// intermediates (megabytes) go back to the allocator rather than sit idle here.
const MAX_POOLED_BYTES: usize = 1 << 20;
/// Buffers of one size kept at most (a step has a few dozen of the same size alive at once).
const MAX_PER_SIZE: usize = 64;
/// Bytes kept at most, all sizes together.
const MAX_TOTAL_BYTES: usize = 64 << 20;

/// Free output buffers by size.
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<Free>,
}

#[derive(Default)]
struct Free {
    by_size: HashMap<usize, Vec<Buffer>>,
    bytes: usize,
}

impl BufferPool {
    /// A kept buffer of exactly `bytes` bytes, if there is one.
    pub(crate) fn take(&self, bytes: usize) -> Option<Buffer> {
        if bytes > MAX_POOLED_BYTES {
            return None;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = free.by_size.get_mut(&bytes)?.pop()?;
        free.bytes -= bytes;
        Some(buffer)
    }

    /// Keeps `buffer` for a later [`BufferPool::take`], or frees it when it is large or the
    /// pool is full.
    pub(crate) fn put(&self, buffer: Buffer) {
        let bytes = buffer.len();
        if bytes == 0 || bytes > MAX_POOLED_BYTES {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.bytes + bytes > MAX_TOTAL_BYTES {
            return;
        }
        let same = free.by_size.entry(bytes).or_default();
        if same.len() < MAX_PER_SIZE {
            same.push(buffer);
            free.bytes += bytes;
        }
    }
}

/// What a pooled tensor's buffer field holds after its memory went back to the pool: no
/// memory at all (a boxed zero-sized value does not allocate).
struct Vacant;

impl DeviceStorage for Vacant {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "none (returned to the executor's pool)"
    }
}

/// An empty buffer to leave in place of one given back to the pool.
pub(crate) fn vacant() -> Buffer {
    Buffer::new(0, Box::new(Vacant))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(bytes: usize) -> Buffer {
        Buffer::new(bytes, Box::new(Vacant))
    }

    #[test]
    fn gives_back_only_a_buffer_of_the_same_size() {
        let pool = BufferPool::default();
        pool.put(buffer(64));
        assert!(pool.take(32).is_none());
        assert_eq!(pool.take(64).map(|b| b.len()), Some(64));
        assert!(pool.take(64).is_none(), "a buffer is handed out once");
    }

    #[test]
    fn keeps_no_large_buffer_and_no_more_than_the_cap() {
        let pool = BufferPool::default();
        pool.put(buffer(MAX_POOLED_BYTES + 1));
        assert!(pool.take(MAX_POOLED_BYTES + 1).is_none());
        for _ in 0..MAX_PER_SIZE + 3 {
            pool.put(buffer(16));
        }
        let mut kept = 0;
        while pool.take(16).is_some() {
            kept += 1;
        }
        assert_eq!(kept, MAX_PER_SIZE);
    }
}
