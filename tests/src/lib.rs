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

/// An F32 tensor `name` of the safetensors file at `path` (what `concord logits` writes):
/// its shape and values; panics naming what is wrong.
pub fn read_f32_tensor(path: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
    let values = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), values)
}

/// Largest |a − b| over two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).abs())
        .fold(0.0, f64::max)
}

/// The log-probability of `id` under `logits` (log-softmax, in f64 with the maximum
/// subtracted): the oracle the `--logprobs` outputs are checked against.
pub fn log_softmax_at(logits: &[f32], id: usize) -> f64 {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let log_z = logits
        .iter()
        .map(|&x| (x as f64 - max).exp())
        .sum::<f64>()
        .ln();
    logits[id] as f64 - max - log_z
}

/// Largest |b| (the logits' scale, for relative tolerances).
pub fn max_abs(b: &[f64]) -> f64 {
    b.iter().map(|v| v.abs()).fold(0.0, f64::max)
}

/// Loads `dir` on a fresh CPU backend at `precision` (None: the checkpoint's own); panics
/// naming the directory on failure.
pub fn load_cpu(
    dir: &Path,
    precision: Option<concord_runtime::Precision>,
) -> concord_runtime::Model {
    load_cpu_with(dir, precision, false)
}

/// [`load_cpu`], with the MTP module when `mtp`.
pub fn load_cpu_with(
    dir: &Path,
    precision: Option<concord_runtime::Precision>,
    mtp: bool,
) -> concord_runtime::Model {
    let backend = concord_runtime::open_backend("cpu").expect("cpu backend");
    let options = concord_runtime::LoadOptions {
        precision,
        max_positions: None,
        mtp,
        ..concord_runtime::LoadOptions::default()
    };
    concord_runtime::Model::load(dir, backend, &options, &mut |_, _| true)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The prompts of a fixture's references (`input_ids.{i}`), in index order.
pub fn prompts(refs: &HashMap<String, Reference>) -> Vec<(usize, Vec<u32>)> {
    let mut out: Vec<(usize, Vec<u32>)> = refs
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("input_ids.")
                .and_then(|i| i.parse().ok())
                .map(|i| (i, v.ids()))
        })
        .collect();
    out.sort();
    out
}

/// The f32 logits of every position of `ids`, as one prefill of a new sequence.
pub fn prefill_logits(model: &concord_runtime::Model, ids: &[u32]) -> Vec<f32> {
    let mut seq = model.new_sequence(ids.len()).expect("new sequence");
    model
        .forward(&mut [&mut seq], &[ids], concord_runtime::LogitRows::All)
        .expect("forward")
        .per_sequence
        .remove(0)
}
