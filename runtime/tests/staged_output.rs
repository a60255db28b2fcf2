//! The staging module: unique names beside the target, publish by rename, removal on every
//! error path, refusal of targets that are not what the output replaces.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use concord_core::Error;
use concord_runtime::staged_output::{
    resolve_file_target, staged_paths, write_file_atomically, StagedDir,
};

/// Names in `dir` (hidden ones included).
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_writer_error_removes_the_staging_file_and_keeps_the_old_target() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("t.bin");
    std::fs::write(&target, "old").unwrap();
    std::fs::write(tmp.path().join("t.bin.partial"), "not ours").unwrap();
    let before = names(tmp.path());
    let mut staging = None;
    let result = write_file_atomically(&target, |file| {
        file.write_all(b"half").unwrap();
        let during = names(tmp.path());
        let new: Vec<_> = during.difference(&before).cloned().collect();
        assert_eq!(new.len(), 1, "exactly one staging file: {new:?}");
        let prefix = format!(".t.bin.concord-tmp-{}-", std::process::id());
        assert!(new[0].starts_with(&prefix), "{}", new[0]);
        staging = Some(tmp.path().join(&new[0]));
        Err(Error::invalid("disk full"))
    });
    assert!(result.is_err());
    assert_eq!(before, names(tmp.path()));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
    assert!(!staged_paths().contains(&staging.unwrap()), "forgotten");
}

#[test]
fn a_successful_write_replaces_the_target_and_leaves_only_it() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("t.bin");
    std::fs::write(&target, "old").unwrap();
    write_file_atomically(&target, |file| {
        file.write_all(b"new").map_err(|e| Error::io("t", e))
    })
    .unwrap();
    assert_eq!(names(tmp.path()), set(&["t.bin"]));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
}

#[test]
fn file_targets_that_are_not_regular_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink("d", tmp.path().join("to-d")).unwrap();
    std::os::unix::fs::symlink("missing", tmp.path().join("dangling")).unwrap();
    std::fs::write(tmp.path().join("f"), "x").unwrap();
    std::os::unix::fs::symlink("f", tmp.path().join("to-f")).unwrap();
    for (name, what) in [
        ("d", "is a directory"),
        ("to-d", "symbolic link to a directory"),
        ("dangling", "cannot be read"),
    ] {
        let err = resolve_file_target(&tmp.path().join(name)).unwrap_err();
        assert!(err.to_string().contains(what), "{name}: {err}");
    }
    // /dev/null is only looked at, never written.
    let err = resolve_file_target(Path::new("/dev/null")).unwrap_err();
    assert!(err.to_string().contains("a character device"), "{err}");
    let f = tmp.path().join("f").canonicalize().unwrap();
    assert_eq!(resolve_file_target(&tmp.path().join("to-f")).unwrap(), f);
    assert_eq!(
        resolve_file_target(&tmp.path().join("new")).unwrap(),
        tmp.path().join("new")
    );
}

#[test]
fn a_staged_directory_dropped_unpublished_is_removed_with_its_contents() {
    let tmp = tempfile::tempdir().unwrap();
    let staged = StagedDir::create(&tmp.path().join("out")).unwrap();
    std::fs::create_dir(staged.path().join("sub")).unwrap();
    std::fs::write(staged.path().join("sub/shard"), "x").unwrap();
    let path = staged.path().to_path_buf();
    assert!(staged_paths().contains(&path));
    drop(staged);
    assert!(names(tmp.path()).is_empty());
    assert!(!staged_paths().contains(&path));
}

#[test]
fn a_staged_directory_publishes_onto_a_new_path_or_an_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for name in ["new", "empty"] {
        let staged = StagedDir::create(&tmp.path().join(name)).unwrap();
        std::fs::write(staged.path().join("config.json"), "{}").unwrap();
        staged.publish().unwrap();
        assert_eq!(names(&tmp.path().join(name)), set(&["config.json"]));
    }
    assert_eq!(names(tmp.path()), set(&["empty", "new"]));
}

#[test]
fn a_directory_target_that_fills_up_meanwhile_is_not_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    let staged = StagedDir::create(&target).unwrap();
    std::fs::write(staged.path().join("config.json"), "{}").unwrap();
    // Someone else creates the target with content before we publish.
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("theirs.txt"), "theirs").unwrap();
    let err = staged.publish().unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(names(tmp.path()), set(&["out"]));
    assert_eq!(names(&target), set(&["theirs.txt"]));
}

#[test]
fn directory_targets_that_are_files_links_or_non_empty_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("file"), "x").unwrap();
    std::fs::create_dir(tmp.path().join("full")).unwrap();
    std::fs::write(tmp.path().join("full/a"), "x").unwrap();
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    std::os::unix::fs::symlink("empty", tmp.path().join("link")).unwrap();
    let before = names(tmp.path());
    for (name, what) in [
        ("file", "is a regular file"),
        ("full", "not empty"),
        ("link", "symbolic link"),
    ] {
        let err = StagedDir::create(&tmp.path().join(name)).err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains(name) && msg.contains(what), "{name}: {msg}");
    }
    assert_eq!(before, names(tmp.path()));
}
