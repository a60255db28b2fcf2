//! Shared helpers for Concord's end-to-end tests: locating the transformers fixtures and
//! reading their reference tensors.
#![forbid(unsafe_code)]

pub mod launch_recorder;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `tests/fixtures` of this repository.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture model directory (those holding a `reference.safetensors`), sorted.
pub fn fixture_models() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("reference.safetensors").is_file());
    dirs.sort();
    dirs
}

/// A reference tensor: shape and values widened to f64 (ids stay exact).
#[derive(Debug, Clone)]
pub struct Reference {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values.
    pub values: Vec<f64>,
}

impl Reference {
    /// Values as token ids.
    pub fn ids(&self) -> Vec<u32> {
        self.values.iter().map(|&v| v as u32).collect()
    }
}

/// Reads every tensor of `dir/reference.safetensors` (F32, F64, I64, I32).
pub fn read_references(dir: &Path) -> HashMap<String, Reference> {
    let path = dir.join("reference.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f64> = match view.dtype() {
            safetensors::Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            safetensors::Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            safetensors::Dtype::I64 => data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            safetensors::Dtype::I32 => data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            other => panic!("{name}: unexpected dtype {other:?}"),
        };
        out.insert(
            name.to_string(),
            Reference {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    out
}

/// Largest |a − b| over two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).abs())
        .fold(0.0, f64::max)
}

/// Largest |b| (the logits' scale, for relative tolerances).
pub fn max_abs(b: &[f64]) -> f64 {
    b.iter().map(|v| v.abs()).fold(0.0, f64::max)
}
