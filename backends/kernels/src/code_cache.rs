//! The on-disk cache of compiled device code (CUDA cubins, HIP code objects): one file per
//! op program, named by a hash of everything that decides its bytes (source, compile options,
//! compiler and driver versions, target architecture), so a change to any of them compiles
//! afresh and a stale file is never loaded.
//!
//! The directory is `$CONCORD_CACHE_DIR`, else `$XDG_CACHE_HOME/concord`, else
//! `$HOME/.cache/concord`, with one subdirectory per backend. Files are written to a temporary
//! name and renamed into place, so a reader never sees half a file, even with several
//! processes compiling at once.
use std::io::Write;
use std::path::{Path, PathBuf};

use concord_core::{Error, Result};
use sha2::{Digest, Sha256};

/// The environment variable that moves the cache.
pub const CACHE_DIR_ENV: &str = "CONCORD_CACHE_DIR";

/// The cache root, if one can be named.
pub fn cache_root() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    var(CACHE_DIR_ENV)
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("concord")))
        .or_else(|| var("HOME").map(|d| PathBuf::from(d).join(".cache").join("concord")))
}

/// What identifies one compiled program.
pub struct CacheKey<'a> {
    /// The backend's subdirectory (`cuda`, `hip`).
    pub backend: &'a str,
    /// The program's name (the op), for people reading the directory.
    pub name: &'a str,
    /// The target architecture (`sm_90`, `gfx90a`).
    pub arch: &'a str,
    /// File extension of the binary (`cubin`, `co`).
    pub extension: &'a str,
    /// Everything else the bytes depend on: source, options, compiler and driver versions.
    pub inputs: &'a [&'a [u8]],
}

impl CacheKey<'_> {
    /// The file name: `<name>-<arch>-<first 16 hex digits of the SHA-256>.<extension>`.
    pub fn file_name(&self) -> String {
        let mut h = Sha256::new();
        for part in [self.backend.as_bytes(), self.arch.as_bytes()]
            .into_iter()
            .chain(self.inputs.iter().copied())
        {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let digest = h.finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{}-{hex}.{}", self.name, self.arch, self.extension)
    }
}

/// A compiled program on disk.
pub struct CachedBinary {
    /// Where it lies (in the cache, or a temporary file when the cache cannot be written).
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Whether it was found in the cache rather than compiled now.
    pub hit: bool,
}

/// The program `key` names: read from the cache, or made by `compile` and stored. When the
/// cache directory cannot be written, the binary still lands in a file (under the system's
/// temporary directory) and a warning says why the cache was not used.
pub fn cached_binary(
    key: &CacheKey,
    compile: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<CachedBinary> {
    cached_binary_in(cache_root(), key, compile)
}

/// [`cached_binary`] under the cache root `root`.
fn cached_binary_in(
    root: Option<PathBuf>,
    key: &CacheKey,
    compile: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<CachedBinary> {
    let file_name = key.file_name();
    let dir = root.map(|r| r.join(key.backend));
    if let Some(dir) = &dir {
        let path = dir.join(&file_name);
        if let Ok(bytes) = std::fs::read(&path) {
            if !bytes.is_empty() {
                return Ok(CachedBinary {
                    path,
                    bytes,
                    hit: true,
                });
            }
        }
    }
    let bytes = compile()?;
    let stored = match &dir {
        Some(dir) => store(dir, &file_name, &bytes),
        None => Err("no cache directory (set CONCORD_CACHE_DIR or HOME)".to_string()),
    };
    let path = match stored {
        Ok(path) => path,
        Err(why) => {
            tracing::warn!("{} code cache not used: {why}", key.backend);
            let tmp = std::env::temp_dir().join(format!("concord-{}", key.backend));
            store(&tmp, &file_name, &bytes).map_err(|e| Error::Backend {
                backend: key.backend.to_string(),
                message: format!("cannot write compiled code anywhere: {e}"),
            })?
        }
    };
    Ok(CachedBinary {
        path,
        bytes,
        hit: false,
    })
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
fn store(dir: &Path, name: &str, bytes: &[u8]) -> std::result::Result<PathBuf, String> {
    let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| fail("cannot create", e))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("cannot write into", e));
    }
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("cannot rename into", e)
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(inputs: &'a [&'a [u8]]) -> CacheKey<'a> {
        CacheKey {
            backend: "test",
            name: "add",
            arch: "sm_90",
            extension: "bin",
            inputs,
        }
    }

    #[test]
    fn every_input_changes_the_name() {
        let base = key(&[b"ab", b"c"]).file_name();
        assert!(
            base.starts_with("add-sm_90-") && base.ends_with(".bin"),
            "{base}"
        );
        assert_ne!(base, key(&[b"a", b"bc"]).file_name());
        assert_ne!(base, key(&[b"ab", b"d"]).file_name());
        let mut other_arch = key(&[b"ab", b"c"]);
        other_arch.arch = "sm_80";
        assert_ne!(base, other_arch.file_name());
        assert_eq!(base, key(&[b"ab", b"c"]).file_name());
    }

    #[test]
    fn a_binary_is_compiled_once_then_read_back() {
        let dir = std::env::temp_dir().join(format!("concord-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let k = key(&[b"source"]);
        let first = cached_binary_in(Some(dir.clone()), &k, || Ok(b"code".to_vec())).unwrap();
        assert!(!first.hit);
        assert_eq!(first.path, dir.join("test").join(k.file_name()));
        assert_eq!(std::fs::read(&first.path).unwrap(), b"code");
        let again = cached_binary_in(Some(dir.clone()), &k, || {
            Err(Error::invalid(
                "a cached program must not be compiled again",
            ))
        })
        .unwrap();
        assert!(again.hit);
        assert_eq!(again.bytes, b"code");
        let other = cached_binary_in(Some(dir.clone()), &key(&[b"other"]), || {
            Err(Error::invalid("compile failed"))
        });
        assert!(other.is_err(), "a failed compile is reported");
        assert!(!std::fs::read_dir(dir.join("test")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_error_not_a_panic() {
        let err = store(Path::new("/proc/concord-no-such-dir"), "x", b"y").unwrap_err();
        assert!(err.contains("/proc/concord-no-such-dir"), "{err}");
    }
}
