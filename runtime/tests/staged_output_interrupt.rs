//! What a SIGINT/SIGTERM handler calls: every staging path still held is removed. Its own test
//! binary, because the registry is process-wide and this empties it.

use concord_runtime::staged_output::{remove_all_staged, staged_paths, StagedDir, StagedFile};

#[test]
fn remove_all_staged_removes_every_unpublished_staging_path() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep"), "not ours").unwrap();
    let file = StagedFile::create(&tmp.path().join("l.safetensors")).unwrap();
    let dir = StagedDir::create(&tmp.path().join("ckpt")).unwrap();
    std::fs::write(dir.path().join("shard"), "x").unwrap();
    assert_eq!(staged_paths().len(), 2);
    remove_all_staged();
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["keep"]);
    assert!(staged_paths().is_empty());
    // The owners dropping afterwards find nothing to do and remove nothing else.
    drop((file, dir));
    assert!(tmp.path().join("keep").is_file());
}
