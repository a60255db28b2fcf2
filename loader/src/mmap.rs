//! The crate's only `unsafe`: memory-mapping a checkpoint file read-only.

use std::fs::File;
use std::path::Path;

use concord_core::{Error, Result};
use memmap2::Mmap;

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
