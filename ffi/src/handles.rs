//! Registries of live handles.
//!
//! A handle given to C is the address of an `Arc`'s contents; the registry maps live addresses
//! to their `Arc`. Every call looks its handle up (cloning the `Arc` under the lock), so a
//! freed, foreign or wrong-kind pointer is an error rather than a dereference, and a handle
//! freed by another thread in the middle of a call stays alive until that call returns.
//! (An address can be reused once its object is gone, so a stale handle may alias a newer one
//! of the same kind: the registry catches misuse, it cannot make misuse meaningful.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::status::{Failure, FfiResult, Status};

/// Live handles of one kind.
pub(crate) struct Registry<T> {
    kind: &'static str,
    live: Mutex<BTreeMap<usize, Arc<T>>>,
}

impl<T> Registry<T> {
    pub const fn new(kind: &'static str) -> Self {
        Registry {
            kind,
            live: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<usize, Arc<T>>> {
        // A panic while the lock was held cannot leave the map half-updated (every update is
        // one insert or remove), so a poisoned lock is still usable.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `value` and returns its handle.
    pub fn insert(&self, value: Arc<T>) -> *mut T {
        let ptr = Arc::as_ptr(&value).cast_mut();
        self.lock().insert(ptr as usize, value);
        ptr
    }

    fn unknown(&self, ptr: *const T) -> Failure {
        Failure::new(
            Status::ConcordErrInvalidHandle,
            format!(
                "{ptr:p} is not a live {} handle (already freed, or not from this library)",
                self.kind
            ),
        )
    }

    /// The object behind a live handle.
    pub fn get(&self, ptr: *const T, what: &str) -> FfiResult<Arc<T>> {
        if ptr.is_null() {
            return Err(Failure::invalid(format!("{what} is NULL")));
        }
        self.lock()
            .get(&(ptr as usize))
            .cloned()
            .ok_or_else(|| self.unknown(ptr))
    }

    /// Unregisters a live handle and hands back its object (dropped by the caller, outside the
    /// lock).
    pub fn remove(&self, ptr: *const T) -> FfiResult<Arc<T>> {
        self.lock()
            .remove(&(ptr as usize))
            .ok_or_else(|| self.unknown(ptr))
    }
}
