//! A model directory built from the input: `model.safetensors.index.json` text and one shard's
//! bytes (a safetensors header and data), opened with `Checkpoint::open` and every tensor
//! converted. Must return Ok or Err, never panic; shard names must never resolve outside the
//! directory.
//!
//! Input layout: `[index_len: u16 LE][index bytes][shard bytes]`.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use concord_loader::Checkpoint;
use libfuzzer_sys::fuzz_target;

/// One scratch directory per process, on tmpfs when there is one: recreating it for every
/// input cost more than the parsing under test.
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
        let dir = base.join(format!("concord-fuzz-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = u16::from_le_bytes([data[0], data[1]]) as usize;
    let rest = &data[2..];
    let (index, shard) = rest.split_at(n.min(rest.len()));
    let dir = scratch_dir();
    std::fs::write(dir.join("model-00001-of-00001.safetensors"), shard).expect("write shard");
    let index_path = dir.join("model.safetensors.index.json");
    if index.is_empty() {
        let _ = std::fs::remove_file(&index_path);
    } else {
        std::fs::write(&index_path, index).expect("write index");
    }
    if let Ok(ckpt) = Checkpoint::open(dir) {
        let root = dir.canonicalize().expect("canonical scratch directory");
        for f in ckpt.files() {
            let real = f.canonicalize().expect("opened shard exists");
            assert!(real.starts_with(&root), "shard {} escapes {}", real.display(), root.display());
        }
        let names: Vec<String> = ckpt.names().map(str::to_string).collect();
        for name in names {
            if let Some(view) = ckpt.get(&name) {
                let _ = view.to_f32();
            }
        }
    }
});
