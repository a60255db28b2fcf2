//! Checked conversions of C arguments: strings, arrays, output pointers and output buffers.
//! Each check happens before anything is dereferenced; a failure names the argument.

use std::ffi::{c_char, CStr};
use std::ptr::NonNull;

use crate::status::{Failure, FfiResult, Status};

/// `ptr` must be non-NULL and aligned for `T`.
fn check_ptr<T>(ptr: *const T, what: &str) -> FfiResult<()> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("{what} is misaligned")));
    }
    Ok(())
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string that stays valid and unmodified for
/// `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> FfiResult<&'a str> {
    check_ptr(ptr, what)?;
    // SAFETY: non-NULL (checked above); NUL-terminated and valid for 'a (caller's contract).
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map_err(|e| Failure::invalid(format!("{what} is not valid UTF-8: {e}")))
}

/// Like [`str_arg`], but NULL is `None`.
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(ptr: *const c_char, what: &str) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { str_arg(ptr, what) }.map(Some)
}

/// An input array of `n` elements, `1 ≤ n ≤ max`.
///
/// # Safety
/// A non-NULL `ptr` must point to `n` initialised elements valid for reads for `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(
    ptr: *const T,
    n: usize,
    max: usize,
    what: &str,
) -> FfiResult<&'a [T]> {
    check_ptr(ptr, what)?;
    if n == 0 {
        return Err(Failure::invalid(format!("{what}: the count is 0")));
    }
    let hard_max = isize::MAX as usize / std::mem::size_of::<T>().max(1);
    if n > max.min(hard_max) {
        return Err(Failure::invalid(format!(
            "{what}: the count {n} exceeds the limit of {}",
            max.min(hard_max)
        )));
    }
    // SAFETY: non-NULL and aligned (checked), n * size_of::<T>() ≤ isize::MAX (checked), and
    // the caller guarantees n initialised elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// A copy of the `T` that `ptr` points to.
///
/// # Safety
/// A non-NULL `ptr` must point to a readable `T` whose bytes are a valid `T`.
pub(crate) unsafe fn read_arg<T: Copy>(ptr: *const T, what: &str) -> FfiResult<T> {
    check_ptr(ptr, what)?;
    // SAFETY: non-NULL and aligned (checked), readable and valid (caller's contract).
    Ok(unsafe { ptr.read() })
}

/// A checked, non-NULL, aligned pointer to one `T` to be written (never read).
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Checks `ptr`.
    pub fn new(ptr: *mut T, what: &str) -> FfiResult<Self> {
        check_ptr(ptr, what)?;
        Ok(Out(NonNull::new(ptr).expect("checked non-NULL above")))
    }

    /// Stores `value` (the old contents are not dropped: C owns plain data).
    ///
    /// # Safety
    /// The pointer must be valid for a write of one `T`.
    pub unsafe fn set(&self, value: T) {
        // SAFETY: non-NULL and aligned (checked in `new`), writable (caller's contract).
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// An output array: `data` with room for `capacity` elements; `data` may be NULL when
/// `capacity` is 0 (a size query).
pub(crate) struct OutBuf<T> {
    data: *mut T,
    capacity: usize,
}

impl<T: Copy> OutBuf<T> {
    /// Checks `data` (unless `capacity` is 0).
    pub fn new(data: *mut T, capacity: usize, what: &str) -> FfiResult<Self> {
        if capacity > 0 {
            check_ptr(data, what)?;
        }
        Ok(OutBuf { data, capacity })
    }

    /// Copies `values` in when they fit; otherwise `CONCORD_ERR_BUFFER_TOO_SMALL` naming the
    /// `needed` size. Only `values.len()` elements are touched, never `capacity`.
    ///
    /// # Safety
    /// When `capacity ≥ values.len()`, `data` must be valid for writes of `values.len()`
    /// elements and not overlap `values`.
    pub unsafe fn fill(&self, values: &[T], needed: usize, what: &str) -> FfiResult<()> {
        if values.len() > self.capacity {
            return Err(Failure::new(
                Status::ConcordErrBufferTooSmall,
                format!(
                    "{what} needs room for {needed}, the buffer holds {}",
                    self.capacity
                ),
            ));
        }
        if !values.is_empty() {
            // SAFETY: `data` is non-NULL and aligned (checked in `new`, capacity > 0 here),
            // writable for values.len() ≤ capacity elements and disjoint from `values`
            // (caller's contract).
            unsafe {
                std::ptr::copy_nonoverlapping(values.as_ptr(), self.data, values.len());
            }
        }
        Ok(())
    }

    /// Writes `value` to element 0 if there is room (used to leave an empty C string behind).
    ///
    /// # Safety
    /// As for [`OutBuf::fill`] with one element.
    pub unsafe fn set_first(&self, value: T) {
        if self.capacity > 0 {
            // SAFETY: non-NULL, aligned, room for one element (capacity > 0, checked in `new`).
            unsafe { self.data.write(value) }
        }
    }
}

/// Copies `text` into a C string buffer of `capacity` bytes, truncating at a UTF-8 character
/// boundary so the result is always valid UTF-8 and NUL-terminated. Does nothing when `buf` is
/// NULL or `capacity` is 0.
///
/// # Safety
/// A non-NULL `buf` must be valid for writes of `capacity` bytes.
pub(crate) unsafe fn copy_truncated(text: &str, buf: *mut c_char, capacity: usize) {
    if buf.is_null() || capacity == 0 {
        return;
    }
    let mut n = text.len().min(capacity - 1);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: buf is non-NULL and writable for `capacity` ≥ n + 1 bytes (caller's contract);
    // `text` is a Rust string, so it cannot overlap a caller-owned buffer we write through.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truncated(text: &str, capacity: usize) -> Vec<u8> {
        let mut buf = vec![0x55u8; capacity.max(1)];
        // SAFETY: `buf` is writable for `capacity` bytes.
        unsafe { copy_truncated(text, buf.as_mut_ptr().cast(), capacity) };
        buf
    }

    #[test]
    fn copy_truncated_keeps_utf8_and_nul() {
        assert_eq!(truncated("abc", 8)[..4], *b"abc\0");
        assert_eq!(truncated("abc", 3)[..3], *b"ab\0");
        assert_eq!(truncated("abc", 1)[..1], *b"\0");
        // "é" is two bytes: a 3-byte buffer holds "a" + NUL, never half a character.
        assert_eq!(truncated("aé", 3)[..2], *b"a\0");
        assert_eq!(truncated("aé", 4)[..4], *"aé\0".as_bytes());
        // capacity 0: nothing written.
        assert_eq!(truncated("abc", 0), vec![0x55]);
    }

    #[test]
    fn slices_are_checked_before_forming() {
        let ids = [1u32, 2, 3];
        // SAFETY: `ids` holds 3 elements.
        let whole = unsafe { slice_arg(ids.as_ptr(), 3, 10, "ids") }.unwrap();
        assert_eq!(whole, &ids);
        for (n, max) in [(0, 10), (4, 3), (usize::MAX, usize::MAX)] {
            // SAFETY: rejected before any slice is formed.
            let err = unsafe { slice_arg(ids.as_ptr(), n, max, "ids") }.unwrap_err();
            assert_eq!(err.status, Status::ConcordErrInvalidArgument);
        }
        // SAFETY: NULL is rejected.
        let err = unsafe { slice_arg::<u32>(std::ptr::null(), 1, 10, "ids") }.unwrap_err();
        assert!(err.message.contains("ids is NULL"), "{}", err.message);
        let misaligned = (ids.as_ptr() as usize + 1) as *const u32;
        // SAFETY: a misaligned pointer is rejected before use.
        let err = unsafe { slice_arg(misaligned, 1, 10, "ids") }.unwrap_err();
        assert!(err.message.contains("misaligned"), "{}", err.message);
    }
}
