//! `model.safetensors.index.json` may only name shards inside the model directory: absolute
//! paths, `..` components and symlinks that resolve outside are errors naming the shard and
//! the index file.

use std::path::{Path, PathBuf};

use concord_loader::Checkpoint;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fp8_block_scaled")
}

/// A scratch directory `root/model` holding a copy of the sharded fixture.
fn copy_fixture(name: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("concord-index-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let model = root.join("model");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, model.join(path.file_name().unwrap())).unwrap();
    }
    (root, model)
}

/// Rewrites every weight_map entry naming `shard` to `replacement`.
fn redirect(model: &Path, shard: &str, replacement: &str) {
    let path = model.join("model.safetensors.index.json");
    let mut index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for v in index["weight_map"].as_object_mut().unwrap().values_mut() {
        if v == shard {
            *v = replacement.into();
        }
    }
    std::fs::write(&path, serde_json::to_string(&index).unwrap()).unwrap();
}

const SHARD: &str = "model-00002-of-00003.safetensors";

fn open_err(model: &Path) -> String {
    Checkpoint::open(model).unwrap_err().to_string()
}

#[test]
fn fixture_opens() {
    let (root, model) = copy_fixture("ok");
    Checkpoint::open(&model).unwrap();
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn parent_dir_shard_is_rejected() {
    let (root, model) = copy_fixture("dotdot");
    // The file exists one level up, so only the path check can refuse it.
    std::fs::copy(model.join(SHARD), root.join(SHARD)).unwrap();
    let bad = format!("../{SHARD}");
    redirect(&model, SHARD, &bad);
    let e = open_err(&model);
    assert!(
        e.contains(&format!("{bad:?}"))
            && e.contains("model.safetensors.index.json")
            && e.contains("no absolute path, no `..`"),
        "{e}"
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn absolute_shard_is_rejected() {
    let (root, model) = copy_fixture("absolute");
    let outside = root.join(SHARD);
    std::fs::copy(model.join(SHARD), &outside).unwrap();
    let bad = outside.display().to_string();
    redirect(&model, SHARD, &bad);
    let e = open_err(&model);
    assert!(
        e.contains(&format!("{bad:?}"))
            && e.contains("model.safetensors.index.json")
            && e.contains("no absolute path, no `..`"),
        "{e}"
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[cfg(unix)]
#[test]
fn symlink_escaping_the_directory_is_rejected() {
    let (root, model) = copy_fixture("symlink");
    let outside = root.join("outside.safetensors");
    std::fs::rename(model.join(SHARD), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, model.join(SHARD)).unwrap();
    let e = open_err(&model);
    assert!(
        e.contains(&format!("{SHARD:?}")) && e.contains("outside the model directory"),
        "{e}"
    );
    // A symlink that stays inside the directory is fine.
    std::fs::remove_file(model.join(SHARD)).unwrap();
    std::fs::rename(&outside, model.join("real.safetensors")).unwrap();
    std::os::unix::fs::symlink(model.join("real.safetensors"), model.join(SHARD)).unwrap();
    Checkpoint::open(&model).unwrap();
    std::fs::remove_dir_all(root).unwrap();
}
