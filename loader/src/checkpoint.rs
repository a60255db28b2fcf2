//! Memory-mapped (sharded) safetensors checkpoints (spec §1.1) and exact upcasts (spec §6).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use concord_core::convert::{bf16_to_f32, e4m3_to_f32, e5m2_to_f32, f16_to_f32};
use concord_core::{DType, Error, Result};

use crate::alloc::try_filled_vec;
use memmap2::Mmap;
use safetensors::SafeTensors;
use serde_json::Value;

/// Name of the single-file checkpoint.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Name of the shard index.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// An index's `weight_map` (tensor → file position) and its `metadata`.
type IndexInfo = (Vec<(String, usize)>, Option<Value>);

/// Where one tensor lives.
#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    /// `None` when the safetensors dtype has no [`DType`] (e.g. F64, I8, BOOL).
    dtype: Option<DType>,
    dtype_name: String,
    shape: Vec<usize>,
    /// Absolute byte range inside the mapped file.
    start: usize,
    end: usize,
}

/// A checkpoint directory: `model.safetensors`, or `model.safetensors.index.json` plus shards,
/// every file memory-mapped read-only. Files must not be modified while it is open.
pub struct Checkpoint {
    dir: PathBuf,
    files: Vec<PathBuf>,
    maps: Vec<Mmap>,
    tensors: BTreeMap<String, Entry>,
    index_metadata: Option<Value>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("dir", &self.dir)
            .field("files", &self.files.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A borrowed view of one tensor's bytes inside a mapped file.
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    /// Tensor name as in the checkpoint.
    pub name: &'a str,
    /// Element type.
    pub dtype: DType,
    /// Shape (row-major, outermost first).
    pub shape: &'a [usize],
    /// Raw little-endian element bytes (`numel × dtype size`); not necessarily aligned.
    pub data: &'a [u8],
    /// The file holding the tensor.
    pub file: &'a Path,
}

impl fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorView")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("bytes", &self.data.len())
            .field("file", &self.file)
            .finish()
    }
}

/// A 256-entry decode table for a one-byte float format.
fn byte_table(decode: fn(u8) -> f32) -> [f32; 256] {
    let mut t = [0.0f32; 256];
    for (b, v) in t.iter_mut().enumerate() {
        *v = decode(b as u8);
    }
    t
}

impl TensorView<'_> {
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        // The safetensors header check already proved the product fits the file; saturate
        // rather than wrap should a view be built by hand.
        self.shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
    }

    /// Exact upcast to f32 of an F32, BF16, F16, F8_E4M3 or F8_E5M2 tensor (every value of
    /// these formats is representable in f32; NaN payloads as the core conversions give them).
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let mut out = try_filled_vec(self.numel(), 0.0f32, self.name)?;
        self.to_f32_into(&mut out)?;
        Ok(out)
    }

    /// Like [`TensorView::to_f32`], writing into `out` (which must hold exactly `numel` values).
    pub fn to_f32_into(&self, out: &mut [f32]) -> Result<()> {
        let n = self.numel();
        if out.len() != n {
            return Err(Error::invalid(format!(
                "{}: output buffer holds {} values, tensor has {n}",
                self.name,
                out.len()
            )));
        }
        let size = self.dtype.size_in_bytes();
        if Some(self.data.len()) != n.checked_mul(size) {
            return Err(Error::model(format!(
                "{} ({}): {} bytes for {n} {} elements",
                self.name,
                self.file.display(),
                self.data.len(),
                self.dtype
            )));
        }
        match self.dtype {
            DType::F32 => {
                for (o, c) in out.iter_mut().zip(self.data.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            DType::BF16 => {
                for (o, c) in out.iter_mut().zip(self.data.chunks_exact(2)) {
                    *o = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
            DType::F16 => {
                for (o, c) in out.iter_mut().zip(self.data.chunks_exact(2)) {
                    *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
            DType::F8E4M3 | DType::F8E5M2 => {
                let t = byte_table(if self.dtype == DType::F8E4M3 {
                    e4m3_to_f32
                } else {
                    e5m2_to_f32
                });
                for (o, &b) in out.iter_mut().zip(self.data) {
                    *o = t[b as usize];
                }
            }
            other => {
                return Err(Error::unsupported(format!(
                "{} ({}): cannot convert {other} to f32 (only F32, BF16, F16, F8_E4M3, F8_E5M2)",
                self.name,
                self.file.display()
            )))
            }
        }
        Ok(())
    }
}

/// Dequantizes a block-scaled FP8 weight (spec §6.2):
/// `W[i, j] = e4m3_to_f32(w[i, j]) · S[i / block[0], j / block[1]]`, one f32 product per element.
///
/// `weight` must be a 2-D F8_E4M3 tensor `[out, in]` and `scale_inv` a 2-D F32 tensor
/// `[ceil(out / block[0]), ceil(in / block[1])]` (despite its name, a multiplier).
pub fn dequantize_block_fp8(
    weight: &TensorView,
    scale_inv: &TensorView,
    block: [usize; 2],
) -> Result<Vec<f32>> {
    let mut out = try_filled_vec(weight.numel(), 0.0f32, weight.name)?;
    dequantize_block_fp8_into(weight, scale_inv, block, &mut out)?;
    Ok(out)
}

/// Like [`dequantize_block_fp8`], writing into `out` (exactly `out × in` values).
pub fn dequantize_block_fp8_into(
    weight: &TensorView,
    scale_inv: &TensorView,
    block: [usize; 2],
    out: &mut [f32],
) -> Result<()> {
    let [rows, cols] = *weight.shape else {
        return Err(Error::model(format!(
            "{} ({}): block-FP8 weight must be 2-D, found shape {:?}",
            weight.name,
            weight.file.display(),
            weight.shape
        )));
    };
    if weight.dtype != DType::F8E4M3 {
        return Err(Error::model(format!(
            "{} ({}): block-FP8 dequantization needs F8_E4M3, found {}",
            weight.name,
            weight.file.display(),
            weight.dtype
        )));
    }
    let [bo, bi] = block;
    if bo == 0 || bi == 0 {
        return Err(Error::invalid(format!(
            "{}: weight block size {block:?} must be positive",
            weight.name
        )));
    }
    let (sr, sc) = (rows.div_ceil(bo), cols.div_ceil(bi));
    if scale_inv.dtype != DType::F32 || scale_inv.shape != [sr, sc] {
        return Err(Error::model(format!(
            "{} ({}): scale for {} [{rows}, {cols}] with block {bo}x{bi} must be F32 [{sr}, {sc}], found {} {:?}",
            scale_inv.name,
            scale_inv.file.display(),
            weight.name,
            scale_inv.dtype,
            scale_inv.shape
        )));
    }
    let Some(numel) = rows.checked_mul(cols) else {
        return Err(Error::model(format!(
            "{}: shape [{rows}, {cols}] overflows",
            weight.name
        )));
    };
    if out.len() != numel {
        return Err(Error::invalid(format!(
            "{}: output buffer holds {} values, weight has {}",
            weight.name,
            out.len(),
            numel
        )));
    }
    if weight.data.len() != numel {
        return Err(Error::model(format!(
            "{}: {} bytes for {rows}x{cols} F8_E4M3",
            weight.name,
            weight.data.len()
        )));
    }
    let scales = scale_inv.to_f32()?;
    let table = byte_table(e4m3_to_f32);
    for (i, (orow, wrow)) in out
        .chunks_exact_mut(cols.max(1))
        .zip(weight.data.chunks_exact(cols.max(1)))
        .enumerate()
    {
        let srow = &scales[(i / bo) * sc..(i / bo + 1) * sc];
        for (j, (o, &b)) in orow.iter_mut().zip(wrow).enumerate() {
            *o = table[b as usize] * srow[j / bi];
        }
    }
    Ok(())
}

/// Rejects a `weight_map` shard name that could point outside the model directory: an absolute
/// path, or one with a `..` (or root / drive prefix) component.
fn check_shard_name(index: &Path, shard: &str) -> Result<()> {
    let path = Path::new(shard);
    let escapes = path.is_absolute()
        || path.has_root()
        || path.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        });
    if escapes || shard.is_empty() {
        return Err(Error::model(format!(
            "{}: shard {shard:?} in weight_map must be a relative path inside the model directory \
             (no absolute path, no `..`)",
            index.display()
        )));
    }
    Ok(())
}

/// After canonicalization (symlinks resolved), every shard must still lie inside `dir`.
fn check_shards_inside(
    dir: &Path,
    index: &Path,
    shards: &[String],
    paths: &[PathBuf],
) -> Result<()> {
    let root = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    for (shard, path) in shards.iter().zip(paths) {
        let real = path.canonicalize().map_err(|e| Error::io(path, e))?;
        if !real.starts_with(&root) {
            return Err(Error::model(format!(
                "{}: shard {shard:?} in weight_map resolves to {}, outside the model directory {}",
                index.display(),
                real.display(),
                root.display()
            )));
        }
    }
    Ok(())
}

impl Checkpoint {
    /// Opens a checkpoint directory: `model.safetensors.index.json` (shards resolved through its
    /// `weight_map`, every listed file must exist), else `model.safetensors`, else every
    /// `*.safetensors` file in the directory. `dir` may also be a single `.safetensors` file.
    pub fn open(dir: &Path) -> Result<Self> {
        if dir.is_file() {
            let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
            return Self::from_files(parent, vec![dir.to_path_buf()], None);
        }
        if !dir.is_dir() {
            return Err(Error::io(
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "checkpoint directory not found",
                ),
            ));
        }
        let index = dir.join(INDEX_FILE);
        if index.is_file() {
            return Self::open_index(dir, &index);
        }
        let single = dir.join(SINGLE_FILE);
        if single.is_file() {
            return Self::from_files(dir.to_path_buf(), vec![single], None);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::model(format!(
                "{}: no {INDEX_FILE}, {SINGLE_FILE} or *.safetensors files",
                dir.display()
            )));
        }
        tracing::debug!(dir = %dir.display(), files = files.len(), "no index; opening every *.safetensors file");
        Self::from_files(dir.to_path_buf(), files, None)
    }

    fn open_index(dir: &Path, index: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::model(format!("{}: invalid JSON: {e}", index.display())))?;
        let wm = v
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                Error::model(format!("{}: missing object `weight_map`", index.display()))
            })?;
        let mut file_names: Vec<String> = Vec::new();
        let mut file_of: HashMap<&str, usize> = HashMap::new();
        let mut wanted: Vec<(&str, usize)> = Vec::with_capacity(wm.len());
        for (tensor, f) in wm {
            let f = f.as_str().ok_or_else(|| {
                Error::model(format!(
                    "{}: weight_map[{tensor:?}] must be a file name, found {f}",
                    index.display()
                ))
            })?;
            let idx = *file_of.entry(f).or_insert_with(|| {
                file_names.push(f.to_string());
                file_names.len() - 1
            });
            wanted.push((tensor.as_str(), idx));
        }
        for f in &file_names {
            check_shard_name(index, f)?;
        }
        // Every listed shard must exist; report all missing ones.
        let missing: Vec<&String> = file_names
            .iter()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(10).map(|s| s.as_str()).collect();
            return Err(Error::model(format!(
                "{}: {} shard file(s) named in weight_map do not exist in {}: {}{}",
                index.display(),
                missing.len(),
                dir.display(),
                shown.join(", "),
                if missing.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            )));
        }
        let paths: Vec<PathBuf> = file_names.iter().map(|f| dir.join(f)).collect();
        check_shards_inside(dir, index, &file_names, &paths)?;
        let weight_map: Vec<(String, usize)> = wanted
            .into_iter()
            .map(|(t, i)| (t.to_string(), i))
            .collect();
        Self::from_files(
            dir.to_path_buf(),
            paths,
            Some((weight_map, v.get("metadata").cloned())),
        )
    }

    fn from_files(dir: PathBuf, files: Vec<PathBuf>, index: Option<IndexInfo>) -> Result<Self> {
        let mut maps = Vec::with_capacity(files.len());
        // Per file: name → entry.
        let mut per_file: Vec<HashMap<String, Entry>> = Vec::with_capacity(files.len());
        for (fi, path) in files.iter().enumerate() {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let map = crate::mmap::map_readonly(&file, path)?;
            let (n, meta) = SafeTensors::read_metadata(&map[..]).map_err(|e| {
                Error::model(format!("{}: invalid safetensors file: {e}", path.display()))
            })?;
            let base = 8 + n;
            let mut entries = HashMap::new();
            for (name, info) in meta.tensors() {
                let dtype_name = info.dtype.to_string();
                let (b, e) = info.data_offsets;
                entries.insert(
                    name,
                    Entry {
                        file: fi,
                        dtype: DType::from_safetensors_name(&dtype_name),
                        dtype_name,
                        shape: info.shape.clone(),
                        start: base + b,
                        end: base + e,
                    },
                );
            }
            per_file.push(entries);
            maps.push(map);
        }

        let mut tensors: BTreeMap<String, Entry> = BTreeMap::new();
        let mut index_metadata = None;
        let indexed = index.is_some();
        if let Some((weight_map, meta)) = index {
            index_metadata = meta;
            let mut absent: Vec<String> = Vec::new();
            for (name, fi) in &weight_map {
                match per_file[*fi].remove(name) {
                    Some(e) => {
                        tensors.insert(name.clone(), e);
                    }
                    None => absent.push(format!("{name} (in {})", files[*fi].display())),
                }
            }
            if !absent.is_empty() {
                let n = absent.len();
                absent.truncate(10);
                return Err(Error::model(format!(
                    "{}: {n} tensor(s) listed in weight_map are not in their shard: {}{}",
                    dir.join(INDEX_FILE).display(),
                    absent.join(", "),
                    if n > 10 { ", …" } else { "" }
                )));
            }
        }
        // Tensors not (or not yet) placed: without an index, all of them; with one, the extras a
        // shard holds beyond its weight_map entries. First file in order wins on duplicates.
        let mut extras = 0usize;
        let mut dups = 0usize;
        for entries in per_file {
            let mut names: Vec<(String, Entry)> = entries.into_iter().collect();
            names.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, e) in names {
                if tensors.contains_key(&name) {
                    dups += 1;
                    continue;
                }
                extras += 1;
                tensors.insert(name, e);
            }
        }
        if indexed && extras > 0 {
            tracing::warn!(dir = %dir.display(), extras, "shards hold tensors not listed in weight_map");
        }
        if dups > 0 {
            tracing::warn!(dir = %dir.display(), dups, "tensors stored in more than one file; using the indexed/first copy");
        }
        Ok(Checkpoint {
            dir,
            files,
            maps,
            tensors,
            index_metadata,
        })
    }

    fn view<'a>(&'a self, name: &'a str, e: &'a Entry, dtype: DType) -> TensorView<'a> {
        TensorView {
            name,
            dtype,
            shape: &e.shape,
            data: &self.maps[e.file][e.start..e.end],
            file: &self.files[e.file],
        }
    }

    /// The tensor `name`; the error names the tensor (and its file when the dtype is unsupported).
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        let Some((k, e)) = self.tensors.get_key_value(name) else {
            return Err(Error::model(format!(
                "tensor `{name}` not found in checkpoint {} ({} tensors in {} file(s))",
                self.dir.display(),
                self.tensors.len(),
                self.files.len()
            )));
        };
        match e.dtype {
            Some(d) => Ok(self.view(k, e, d)),
            None => Err(Error::unsupported(format!(
                "tensor `{name}` in {} has dtype {}, which Concord does not handle",
                self.files[e.file].display(),
                e.dtype_name
            ))),
        }
    }

    /// Lets the OS drop this process's resident copy of `bytes`, part of a tensor of this
    /// checkpoint that the caller has finished reading. Loading converts tensor by tensor; without
    /// this every mapped page read stays resident until the checkpoint is dropped, and peak memory
    /// during load is the settled size plus the whole checkpoint. Reading `bytes` again still
    /// works (the pages fault in again); bytes outside this checkpoint's maps are ignored.
    pub fn release_pages(&self, bytes: &[u8]) {
        let start = bytes.as_ptr() as usize;
        for map in &self.maps {
            let base = map.as_ptr() as usize;
            if start >= base && start + bytes.len() <= base + map.len() {
                crate::mmap::release_pages(map, start - base, bytes.len());
                return;
            }
        }
    }

    /// The tensor `name`, or `None` if absent (or stored in a dtype Concord does not handle).
    pub fn get(&self, name: &str) -> Option<TensorView<'_>> {
        let (k, e) = self.tensors.get_key_value(name)?;
        Some(self.view(k, e, e.dtype?))
    }

    /// True if the checkpoint holds a tensor `name` (in any dtype).
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The safetensors dtype string of `name` (also for dtypes without a [`DType`]).
    pub fn dtype_name(&self, name: &str) -> Option<&str> {
        self.tensors.get(name).map(|e| e.dtype_name.as_str())
    }

    /// The shape of `name` (also for dtypes without a [`DType`]).
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|e| e.shape.as_slice())
    }

    /// The file holding `name`.
    pub fn file_of(&self, name: &str) -> Option<&Path> {
        self.tensors.get(name).map(|e| self.files[e.file].as_path())
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True if the checkpoint holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The mapped files, in index order (first appearance in `weight_map`) or sorted.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index's `metadata` object (e.g. `total_size`), when opened through an index.
    pub fn index_metadata(&self) -> Option<&Value> {
        self.index_metadata.as_ref()
    }

    /// Sum of all tensors' data bytes.
    pub fn total_bytes(&self) -> u64 {
        self.tensors
            .values()
            .map(|e| (e.end - e.start) as u64)
            .sum()
    }
}
