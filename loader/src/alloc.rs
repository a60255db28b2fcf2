//! Fallible allocation for buffers whose size comes from untrusted input (a config field, a
//! tensor shape): an impossible size is an error naming what was being allocated, never an
//! abort of the host process.

use concord_core::{Error, Result};

/// `n` copies of `fill`, or an error naming `what` when `n` elements cannot be allocated.
pub fn try_filled_vec<T: Clone>(n: usize, fill: T, what: &str) -> Result<Vec<T>> {
    let mut v = try_vec_with_capacity(n, what)?;
    v.resize(n, fill);
    Ok(v)
}

/// An empty vector with room for `n` elements, or an error naming `what`.
pub fn try_vec_with_capacity<T>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| {
        Error::model(format!(
            "cannot allocate {what}: {n} elements of {} bytes ({e})",
            std::mem::size_of::<T>()
        ))
    })?;
    Ok(v)
}

/// `a × b`, or an error naming `what` when the product overflows `usize`.
pub fn checked_size(a: usize, b: usize, what: &str) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| Error::model(format!("{what}: size {a} × {b} overflows")))
}
