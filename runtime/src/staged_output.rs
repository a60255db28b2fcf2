//! Staged outputs: a file or directory is written under a unique name in its destination's own
//! directory and published by one atomic `rename` once it is complete, so a reader sees the
//! old target or the whole new one, never a half-written one.
//!
//! Staging names are `.{target name}.concord-tmp-{pid}-{random}`, created with "fail if it
//! exists" (`O_EXCL` / `mkdir`) by `tempfile`, so a run never opens, reuses or deletes a path it
//! did not create, and two runs writing siblings (or the same target) never share a staging area.
//! Every staging path is listed in a process-wide registry until it is published or removed;
//! [`remove_all_staged`] empties it, for a SIGINT/SIGTERM handler to call before exiting.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Permissions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use concord_core::{Error, Result};

/// Staging paths created by this process and not yet published or removed.
static STAGED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The registry, usable even if a thread panicked while holding it (a list of paths cannot be
/// left inconsistent by a panic between its statements).
fn registry() -> MutexGuard<'static, Vec<PathBuf>> {
    STAGED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes a staging path (file or directory tree). A directory is retried because a writer
/// thread may add an entry between the listing and the final `rmdir`.
fn remove_path(path: &Path) -> std::io::Result<()> {
    let mut last = Ok(());
    for _ in 0..3 {
        last = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => Err(e),
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
            Ok(_) => std::fs::remove_file(path),
        };
        if last.is_ok() {
            return Ok(());
        }
    }
    last
}

/// Removes every staging path this process still holds and forgets them. Meant for a signal
/// handler that exits right after; holding the registry lock, it waits for a publish in
/// progress to finish, so a target is never left half-renamed.
pub fn remove_all_staged() {
    let mut staged = registry();
    for path in staged.drain(..) {
        if let Err(e) = remove_path(&path) {
            tracing::warn!(path = %path.display(), "could not remove staging path: {e}");
        }
    }
}

/// The staging paths this process holds now (for tests and diagnostics).
pub fn staged_paths() -> Vec<PathBuf> {
    registry().clone()
}

/// `target`'s directory (`.` for a bare name) and final component.
fn split_target(target: &Path) -> Result<(PathBuf, OsString)> {
    let name = target.file_name().ok_or_else(|| {
        Error::invalid(format!(
            "{}: an output path must end in a file or directory name",
            target.display()
        ))
    })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_os_string()))
}

/// The staging-name prefix for a target named `name`: it names the target, this process and
/// the tool; `tempfile` appends a random suffix and creates the path only if it is new.
fn staging_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(format!(".concord-tmp-{}-", std::process::id()));
    prefix
}

/// `tempfile` settings for a staging path with `prefix`, created with `mode` (the umask still
/// applies, as for a plain `File::create` / `create_dir`).
fn staging_builder(prefix: &OsStr, mode: u32) -> tempfile::Builder<'_, 'static> {
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(prefix)
        .rand_bytes(8)
        .permissions(Permissions::from_mode(mode));
    builder
}

/// What kind of thing an existing path is, for error messages.
fn kind_name(ft: std::fs::FileType) -> &'static str {
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "of an unknown kind"
    }
}

/// Where a file output really goes: `target` itself when it does not exist or is a regular
/// file; the file a symbolic link names when it names a regular file (the link is kept and its
/// file replaced, as writing through the link would). Anything else (device, FIFO, socket,
/// directory, a link to one of those) is refused: renaming over it would destroy it.
pub fn resolve_file_target(target: &Path) -> Result<PathBuf> {
    let link = match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(target.to_path_buf()),
        Err(e) => return Err(Error::io(target, e)),
        Ok(m) => m,
    };
    if link.is_file() {
        return Ok(target.to_path_buf());
    }
    if link.file_type().is_symlink() {
        match std::fs::metadata(target) {
            Ok(m) if m.is_file() => {
                return std::fs::canonicalize(target).map_err(|e| Error::io(target, e));
            }
            Ok(m) => {
                return Err(Error::invalid(format!(
                    "{} is a symbolic link to {}; refusing to replace it with a regular file",
                    target.display(),
                    kind_name(m.file_type())
                )))
            }
            Err(e) => {
                return Err(Error::invalid(format!(
                    "{} is a symbolic link whose target cannot be read ({e}); refusing to write it",
                    target.display()
                )))
            }
        }
    }
    Err(Error::invalid(format!(
        "{} exists and is {}, not a regular file; refusing to replace it",
        target.display(),
        kind_name(link.file_type())
    )))
}

/// Checks that a directory output can be published at `target`: it must not exist, or be an
/// empty directory (which the publishing `rename` replaces; the kernel refuses that rename if
/// the directory is no longer empty, so nothing with content is ever deleted). A symbolic link,
/// a non-empty directory or anything else is refused.
pub fn check_dir_target(target: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(target, e)),
        Ok(m) => m,
    };
    if meta.file_type().is_symlink() {
        return Err(Error::invalid(format!(
            "{} is a symbolic link; give a new path or an empty directory",
            target.display()
        )));
    }
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "{} exists and is {}; give a new path or an empty directory",
            target.display(),
            kind_name(meta.file_type())
        )));
    }
    let mut entries = std::fs::read_dir(target).map_err(|e| Error::io(target, e))?;
    if entries.next().is_some() {
        return Err(Error::invalid(format!(
            "{} exists and is not empty; give a new path or an empty directory",
            target.display()
        )));
    }
    Ok(())
}

/// A file being written beside its target. Dropping it without [`StagedFile::publish`]
/// removes it.
pub struct StagedFile {
    file: Option<File>,
    path: PathBuf,
    target: PathBuf,
}

impl StagedFile {
    /// Creates the staging file for `target` (checked with [`resolve_file_target`]).
    pub fn create(target: &Path) -> Result<Self> {
        let target = resolve_file_target(target)?;
        let (parent, name) = split_target(&target)?;
        // Created and registered under the lock, so a signal handler sees it from its birth.
        let mut staged = registry();
        let prefix = staging_prefix(&name);
        let temp = staging_builder(&prefix, 0o666)
            .tempfile_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        let (file, path) = temp.keep().map_err(|e| Error::io(&parent, e.error))?;
        staged.push(path.clone());
        Ok(Self {
            file: Some(file),
            path,
            target,
        })
    }

    /// The staging path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path the file will be published at (a symbolic link's file, when the target was one).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The open staging file.
    pub fn file(&mut self) -> Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| Error::invalid(format!("{} is already closed", self.path.display())))
    }

    /// Flushes the file to disk, checks the target again (it may have changed since
    /// [`StagedFile::create`]) and renames the staging file onto it.
    pub fn publish(mut self) -> Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush()
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::io(&self.path, e))?;
        }
        if resolve_file_target(&self.target)? != self.target {
            return Err(Error::invalid(format!(
                "{} changed while it was being written (it is now a symbolic link)",
                self.target.display()
            )));
        }
        publish(&self.path, &self.target)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        self.file.take();
        discard(&self.path);
    }
}

/// Writes `target` whole or not at all: `write` fills a staging file, which is published only
/// if it returns `Ok`; on any error the staging file is removed and the target is untouched.
pub fn write_file_atomically(
    target: &Path,
    write: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    let mut staged = StagedFile::create(target)?;
    write(staged.file()?)?;
    staged.publish()
}

/// A directory being filled beside its target. Dropping it without [`StagedDir::publish`]
/// removes it and everything in it (all of which this run created).
pub struct StagedDir {
    path: PathBuf,
    target: PathBuf,
}

impl StagedDir {
    /// Creates the staging directory for `target` (checked with [`check_dir_target`]).
    pub fn create(target: &Path) -> Result<Self> {
        check_dir_target(target)?;
        let (parent, name) = split_target(target)?;
        let mut staged = registry();
        let prefix = staging_prefix(&name);
        let dir = staging_builder(&prefix, 0o777)
            .tempdir_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        let path = dir.keep();
        staged.push(path.clone());
        Ok(Self {
            path,
            target: target.to_path_buf(),
        })
    }

    /// The staging directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory the output will be published at.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the staging directory onto the target. Fails (and the staging directory is
    /// removed) if the target became non-empty or not a directory meanwhile.
    pub fn publish(self) -> Result<()> {
        check_dir_target(&self.target)?;
        publish(&self.path, &self.target)
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        discard(&self.path);
    }
}

/// Renames `staging` onto `target` under the registry lock and forgets it; a signal handler
/// then either runs before (and removes the staging path) or after (and finds it published).
fn publish(staging: &Path, target: &Path) -> Result<()> {
    let mut staged = registry();
    std::fs::rename(staging, target).map_err(|e| {
        Error::invalid(format!(
            "could not publish {} as {}: {e}",
            staging.display(),
            target.display()
        ))
    })?;
    staged.retain(|p| p != staging);
    Ok(())
}

/// Removes a staging path that was not published, and forgets it.
fn discard(staging: &Path) {
    let mut staged = registry();
    let Some(at) = staged.iter().position(|p| p == staging) else {
        return; // published, or removed by `remove_all_staged`
    };
    staged.swap_remove(at);
    if let Err(e) = remove_path(staging) {
        tracing::warn!(path = %staging.display(), "could not remove staging path: {e}");
    }
}
