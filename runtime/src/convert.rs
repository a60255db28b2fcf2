//! `concord convert`: rewrite a checkpoint as BF16 (FP8 blocks dequantized the way DeepSeek's
//! `fp8_cast_bf16.py` does) or as FP8 (128×128 block-scaled e4m3fn with `weight_scale_inv`),
//! one tensor at a time, into sharded safetensors with an index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use concord_core::convert::f32_to_bf16;
use concord_core::{DType, Error, Result};
use concord_loader::{Checkpoint, ModelConfig, TensorRole};

use crate::host_convert::{quantize_block_fp8, weight_f32};
use crate::staged_output::{check_dir_target, StagedDir};

/// Target format of a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertTarget {
    /// FP8 weights dequantized to BF16; scales dropped; no `quantization_config`.
    Bf16,
    /// Every projection weight as F8_E4M3 + F32 `weight_scale_inv` blocks.
    Fp8,
}

/// Conversion settings.
pub struct ConvertOptions {
    /// Target format.
    pub target: ConvertTarget,
    /// Largest shard, in bytes.
    pub shard_bytes: usize,
}

struct Pending {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    data: Vec<u8>,
}

struct ShardWriter {
    dir: PathBuf,
    limit: usize,
    pending: Vec<Pending>,
    pending_bytes: usize,
    shards: Vec<(PathBuf, Vec<String>)>,
    total_bytes: usize,
    written: Vec<WrittenTensor>,
}

impl ShardWriter {
    fn push(&mut self, t: Pending) -> Result<()> {
        if self.pending_bytes > 0 && self.pending_bytes + t.data.len() > self.limit {
            self.flush()?;
        }
        self.pending_bytes += t.data.len();
        self.total_bytes += t.data.len();
        self.written.push(WrittenTensor {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
        });
        self.pending.push(t);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self
            .dir
            .join(format!("shard-{:05}.tmp", self.shards.len() + 1));
        let views = self
            .pending
            .iter()
            .map(|t| {
                let dtype = safetensors_dtype(t.dtype)?;
                safetensors::tensor::TensorView::new(dtype, t.shape.clone(), &t.data)
                    .map(|v| (t.name.clone(), v))
                    .map_err(|e| Error::invalid(format!("{}: {e}", t.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize_to_file(views, None, &path)
            .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
        let names = self.pending.drain(..).map(|t| t.name).collect();
        self.shards.push((path, names));
        self.pending_bytes = 0;
        Ok(())
    }

    /// Renames shards to `model-0000i-of-0000n.safetensors`, writes the index and returns
    /// what was written.
    fn finish(mut self) -> Result<Vec<WrittenTensor>> {
        self.flush()?;
        let n = self.shards.len();
        let mut weight_map = BTreeMap::new();
        for (i, (tmp, names)) in self.shards.iter().enumerate() {
            let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, n);
            std::fs::rename(tmp, self.dir.join(&file)).map_err(|e| Error::io(tmp, e))?;
            for name in names {
                weight_map.insert(name.clone(), file.clone());
            }
        }
        let index = serde_json::json!({
            "metadata": { "total_size": self.total_bytes },
            "weight_map": weight_map,
        });
        write_json(&self.dir.join("model.safetensors.index.json"), &index)?;
        Ok(self.written)
    }
}

fn safetensors_dtype(d: DType) -> Result<safetensors::Dtype> {
    Ok(match d {
        DType::F32 => safetensors::Dtype::F32,
        DType::F16 => safetensors::Dtype::F16,
        DType::BF16 => safetensors::Dtype::BF16,
        DType::F8E4M3 => safetensors::Dtype::F8_E4M3,
        DType::F8E5M2 => safetensors::Dtype::F8_E5M2,
        DType::I32 => safetensors::Dtype::I32,
        DType::U32 => safetensors::Dtype::U32,
        DType::I64 => safetensors::Dtype::I64,
        DType::U8 => safetensors::Dtype::U8,
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::invalid(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
}

/// Converts the checkpoint in `input` into a new directory `output`.
///
/// `output` must not exist, or be an empty directory, and its parent must exist; it may not be
/// `input`, inside `input`, or contain `input` (compared after resolving links). The config is
/// checked (every field a conversion divides by included) before anything is written. Work
/// happens in a uniquely named staging directory beside `output`
/// (`.{name}.concord-tmp-{pid}-{random}`, see [`crate::staged_output`]); the result is re-opened
/// with the loader and checked tensor by tensor before one `rename` publishes it. On any error
/// the staging directory is removed; nothing this run did not create is ever deleted.
/// `progress(done, total)` counts tensors and returns false to cancel.
pub fn convert_checkpoint(
    input: &Path,
    output: &Path,
    options: &ConvertOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<()> {
    check_paths_apart(input, output)?;
    check_dir_target(output)?;
    let config_path = input.join("config.json");
    let cfg = ModelConfig::from_file(&config_path)?;
    check_config(&cfg, &config_path)?;
    let ckpt = Checkpoint::open(input)?;
    let staging = StagedDir::create(output)?;
    let written = convert_into(&cfg, &ckpt, input, staging.path(), options, progress)?;
    verify_output(staging.path(), &written, options.target).map_err(|e| {
        let why = match e {
            Error::Model(m) => m,
            other => other.to_string(),
        };
        Error::model(format!(
            "the converted checkpoint does not load, so {} was not written: {why}",
            output.display()
        ))
    })?;
    staging.publish()
}

/// `path` resolved through links; a path that does not exist yet resolves through its parent.
fn resolved(path: &Path) -> Result<PathBuf> {
    if std::fs::symlink_metadata(path).is_ok() {
        return std::fs::canonicalize(path).map_err(|e| Error::io(path, e));
    }
    let name = path.file_name().ok_or_else(|| {
        Error::invalid(format!(
            "{}: the output must end in a directory name",
            path.display()
        ))
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = std::fs::canonicalize(parent).map_err(|e| {
        Error::invalid(format!(
            "{}: the output's parent directory {} cannot be used: {e}",
            path.display(),
            parent.display()
        ))
    })?;
    Ok(parent.join(name))
}

/// Refuses an output that is the input, lies inside it, or contains it: writing it would
/// read what is being written, or publish over the source.
fn check_paths_apart(input: &Path, output: &Path) -> Result<()> {
    let input_real = std::fs::canonicalize(input).map_err(|e| Error::io(input, e))?;
    let output_real = resolved(output)?;
    let problem = if output_real == input_real {
        "is the input checkpoint"
    } else if output_real.starts_with(&input_real) {
        "is inside the input checkpoint"
    } else if input_real.starts_with(&output_real) {
        "contains the input checkpoint"
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!(
        "output {} {problem} {}; choose a directory outside it",
        output.display(),
        input.display()
    )))
}

/// The loader's consistency checks plus what the conversion itself divides by.
fn check_config(cfg: &ModelConfig, path: &Path) -> Result<()> {
    let [rows, cols] = cfg.weight_block_size();
    if rows == 0 || cols == 0 {
        return Err(Error::model(format!(
            "{}: quantization_config.weight_block_size must be two positive numbers, got [{rows}, {cols}]",
            path.display()
        )));
    }
    cfg.validate()
        .map_err(|e| Error::model(format!("{}: {e}", path.display())))
}

/// What the converter wrote for one tensor.
struct WrittenTensor {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
}

/// Opens the converted checkpoint in `dir` the way a model load does (config, safetensors,
/// tensor inventory) and checks that every tensor the converter wrote is there with its dtype
/// and shape, and that the target format holds (no FP8 left in a BF16 conversion).
fn verify_output(dir: &Path, written: &[WrittenTensor], target: ConvertTarget) -> Result<()> {
    let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
    cfg.validate()?;
    let ckpt = Checkpoint::open(dir)?;
    concord_loader::validate_checkpoint(&cfg, &ckpt, false)?;
    for t in written {
        let dtype = ckpt.dtype_name(&t.name).ok_or_else(|| {
            Error::model(format!("tensor `{}` is missing from the output", t.name))
        })?;
        let found = DType::from_safetensors_name(dtype);
        if found != Some(t.dtype) || ckpt.shape(&t.name) != Some(t.shape.as_slice()) {
            return Err(Error::model(format!(
                "tensor `{}`: wrote {} {:?}, read back {dtype} {:?}",
                t.name,
                t.dtype,
                t.shape,
                ckpt.shape(&t.name).unwrap_or_default()
            )));
        }
        if target == ConvertTarget::Bf16 && t.dtype == DType::F8E4M3 {
            return Err(Error::model(format!(
                "tensor `{}` is still F8_E4M3 in a BF16 conversion",
                t.name
            )));
        }
    }
    if ckpt.len() != written.len() {
        return Err(Error::model(format!(
            "the output holds {} tensors, the converter wrote {}",
            ckpt.len(),
            written.len()
        )));
    }
    Ok(())
}

fn convert_into(
    cfg: &ModelConfig,
    ckpt: &Checkpoint,
    input: &Path,
    out: &Path,
    options: &ConvertOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<WrittenTensor>> {
    let block = cfg.weight_block_size();
    let quantizable: std::collections::HashSet<String> =
        concord_loader::expected_tensors(cfg, true)
            .into_iter()
            .filter(|t| matches!(t.role, TensorRole::Weight { quantizable: true }))
            .map(|t| t.name)
            .collect();
    let names: Vec<String> = ckpt
        .names()
        .filter(|n| !n.ends_with("_scale_inv"))
        .map(str::to_string)
        .collect();
    let mut writer = ShardWriter {
        dir: out.to_path_buf(),
        limit: options.shard_bytes.max(1),
        pending: Vec::new(),
        pending_bytes: 0,
        shards: Vec::new(),
        total_bytes: 0,
        written: Vec::new(),
    };
    for (i, name) in names.iter().enumerate() {
        let view = ckpt.tensor(name)?;
        let scale_name = format!("{name}_scale_inv");
        let scale = ckpt.get(&scale_name);
        let shape = view.shape.to_vec();
        match (options.target, view.dtype) {
            (ConvertTarget::Bf16, DType::F8E4M3) => {
                let values = weight_f32(&view, scale.as_ref(), block)?;
                let data = values
                    .iter()
                    .flat_map(|v| f32_to_bf16(*v).to_le_bytes())
                    .collect();
                writer.push(Pending {
                    name: name.clone(),
                    dtype: DType::BF16,
                    shape,
                    data,
                })?;
            }
            (ConvertTarget::Fp8, DType::F8E4M3) => {
                let s = scale.ok_or_else(|| Error::model(format!("{name} has no {scale_name}")))?;
                writer.push(Pending {
                    name: name.clone(),
                    dtype: DType::F8E4M3,
                    shape,
                    data: view.data.to_vec(),
                })?;
                let data = s.data.to_vec();
                writer.push(Pending {
                    name: scale_name,
                    dtype: DType::F32,
                    shape: s.shape.to_vec(),
                    data,
                })?;
            }
            (ConvertTarget::Fp8, _) if quantizable.contains(name) && shape.len() == 2 => {
                let (rows, cols) = (shape[0], shape[1]);
                let q = quantize_block_fp8(&view.to_f32()?, rows, cols, block);
                writer.push(Pending {
                    name: name.clone(),
                    dtype: DType::F8E4M3,
                    shape,
                    data: q.codes,
                })?;
                let data = q.scales.iter().flat_map(|v| v.to_le_bytes()).collect();
                let sshape = vec![rows.div_ceil(block[0]), cols.div_ceil(block[1])];
                writer.push(Pending {
                    name: scale_name,
                    dtype: DType::F32,
                    shape: sshape,
                    data,
                })?;
            }
            _ => {
                writer.push(Pending {
                    name: name.clone(),
                    dtype: view.dtype,
                    shape,
                    data: view.data.to_vec(),
                })?;
            }
        }
        if !progress(i + 1, names.len()) {
            return Err(Error::Cancelled);
        }
    }
    let written = writer.finish()?;

    let mut config = cfg.raw.clone();
    if let Some(obj) = config.as_object_mut() {
        match options.target {
            ConvertTarget::Bf16 => {
                obj.remove("quantization_config");
            }
            ConvertTarget::Fp8 => {
                obj.insert(
                    "quantization_config".into(),
                    serde_json::json!({
                        "activation_scheme": "dynamic",
                        "fmt": "e4m3",
                        "quant_method": "fp8",
                        "weight_block_size": block,
                    }),
                );
            }
        }
        obj.insert("torch_dtype".into(), "bfloat16".into());
    }
    write_json(&out.join("config.json"), &config)?;
    copy_side_files(input, out)?;
    Ok(written)
}

/// Copies tokenizer, generation config and other small files that are not weights.
fn copy_side_files(input: &Path, out: &Path) -> Result<()> {
    for entry in std::fs::read_dir(input).map_err(|e| Error::io(input, e))? {
        let path = entry.map_err(|e| Error::io(input, e))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let is_weights = name.ends_with(".safetensors") || name == "model.safetensors.index.json";
        if path.is_file() && !is_weights && name != "config.json" {
            std::fs::copy(&path, out.join(&name)).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}
