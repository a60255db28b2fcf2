//! The checkpoint's actual weight bytes, when its files are there: the index's
//! `metadata.total_size` (present in every Hub release, even without the shards), else the
//! sum of the tensors in the safetensors files.

use std::path::Path;

use concord_core::{Error, Result};
use serde_json::Value;

use crate::checkpoint::{Checkpoint, INDEX_FILE, SINGLE_FILE};

/// Where [`actual_weight_bytes`] found its figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSource {
    /// `model.safetensors.index.json` → `metadata.total_size`.
    IndexTotalSize,
    /// The tensors of the safetensors files, summed.
    SafetensorsFiles,
}

impl SizeSource {
    /// How the report names it.
    pub fn describe(self) -> &'static str {
        match self {
            SizeSource::IndexTotalSize => "model.safetensors.index.json metadata.total_size",
            SizeSource::SafetensorsFiles => "sum of the safetensors tensors",
        }
    }
}

/// The checkpoint's weight bytes in `dir`, or `None` when it holds neither an index nor a
/// `model.safetensors`.
pub fn actual_weight_bytes(dir: &Path) -> Result<Option<(u64, SizeSource)>> {
    let index = dir.join(INDEX_FILE);
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| Error::model(format!("{}: invalid JSON: {e}", index.display())))?;
        match json.pointer("/metadata/total_size") {
            Some(v) => {
                // Written as an integer by the Hub tools; tolerate a float or a string.
                let total = v
                    .as_u64()
                    .or_else(|| {
                        v.as_f64()
                            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                            .map(|f| f as u64)
                    })
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| {
                        Error::model(format!(
                            "{}: field `metadata.total_size`: expected a byte count, found {v}",
                            index.display()
                        ))
                    })?;
                return Ok(Some((total, SizeSource::IndexTotalSize)));
            }
            None => {
                let ckpt = Checkpoint::open(dir)?;
                return Ok(Some((ckpt.total_bytes(), SizeSource::SafetensorsFiles)));
            }
        }
    }
    if dir.join(SINGLE_FILE).is_file() {
        let ckpt = Checkpoint::open(dir)?;
        return Ok(Some((ckpt.total_bytes(), SizeSource::SafetensorsFiles)));
    }
    Ok(None)
}
