//! The crate's only `unsafe`: memory-mapping a checkpoint file read-only.

use std::fs::File;
use std::path::Path;

use concord_core::{Error, Result};
use memmap2::{Mmap, UncheckedAdvice};

/// Maps `file` (opened from `path`) read-only into memory.
///
/// The checkpoint files must not be modified, truncated or replaced in place while a
/// [`crate::Checkpoint`] that mapped them is alive: the mapping would observe the change (or the
/// process would receive SIGBUS on truncation). Concord never writes to checkpoint files, and
/// tools that rewrite checkpoints must write new files (and rename) rather than edit in place.
pub(crate) fn map_readonly(file: &File, path: &Path) -> Result<Mmap> {
    #[allow(unsafe_code)]
    // SAFETY: `Mmap::map` is unsafe because the underlying file may be changed by another process
    // (or this one) while mapped, which would make the `&[u8]` we hand out alias mutable memory
    // (undefined behaviour) or fault on truncation. The mapping is read-only and private to this
    // crate; we rely on the documented requirement that checkpoint files are not modified while a
    // `Checkpoint` is open. Concord itself never opens checkpoint files for writing.
    let map = unsafe { Mmap::map(file) };
    map.map_err(|e| Error::io(path, e))
}

/// Lets the OS drop this process's resident pages of `map[offset..offset + len]`.
///
/// Advisory: a failure is logged and ignored, and reading the range again still works.
pub(crate) fn release_pages(map: &Mmap, offset: usize, len: usize) {
    if len == 0 {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: `Mmap::map` maps the file shared and read-only; MADV_DONTNEED on such a mapping
    // only unmaps the pages from this process, and the next access faults them in again from
    // the file with the same contents (under `map_readonly`'s requirement that checkpoint files
    // are not modified while mapped). No reference into the map observes different bytes, and
    // memmap2 checks that the range lies inside the map.
    let advised = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, offset, len) };
    if let Err(e) = advised {
        tracing::debug!(offset, len, error = %e, "madvise(DONTNEED) on a checkpoint map failed");
    }
}
