//! `generation_config.json` (optional sampling defaults shipped with a checkpoint).

use std::path::Path;

use serde_json::Value;

/// The fields of `generation_config.json` a runtime uses; everything else stays in `raw`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// `bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `eos_token_id` (int or list).
    pub eos_token_ids: Vec<u32>,
    /// `pad_token_id`.
    pub pad_token_id: Option<u32>,
    /// `do_sample`.
    pub do_sample: Option<bool>,
    /// `temperature`.
    pub temperature: Option<f32>,
    /// `top_p`.
    pub top_p: Option<f32>,
    /// `top_k`.
    pub top_k: Option<usize>,
    /// `max_new_tokens`.
    pub max_new_tokens: Option<usize>,
    /// The whole JSON object.
    pub raw: Value,
}

fn id(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|u| u32::try_from(u).ok())
}

impl GenerationConfig {
    /// Parses the text of a `generation_config.json`; `None` if it is not a JSON object.
    pub fn from_json_str(s: &str) -> Option<Self> {
        let raw: Value = serde_json::from_str(s).ok()?;
        let o = raw.as_object()?;
        let eos_token_ids = match o.get("eos_token_id") {
            Some(Value::Array(a)) => a.iter().filter_map(id).collect(),
            Some(v) => id(v).into_iter().collect(),
            None => vec![],
        };
        Some(GenerationConfig {
            bos_token_id: o.get("bos_token_id").and_then(id),
            eos_token_ids,
            pad_token_id: o.get("pad_token_id").and_then(id),
            do_sample: o.get("do_sample").and_then(Value::as_bool),
            temperature: o
                .get("temperature")
                .and_then(Value::as_f64)
                .map(|x| x as f32),
            top_p: o.get("top_p").and_then(Value::as_f64).map(|x| x as f32),
            top_k: o.get("top_k").and_then(Value::as_u64).map(|x| x as usize),
            max_new_tokens: o
                .get("max_new_tokens")
                .and_then(Value::as_u64)
                .map(|x| x as usize),
            raw,
        })
    }
}

/// Reads `dir/generation_config.json`; `None` when absent or unparsable (logged at debug level).
pub fn read_generation_config(dir: &Path) -> Option<GenerationConfig> {
    let path = dir.join("generation_config.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let g = GenerationConfig::from_json_str(&text);
    if g.is_none() {
        tracing::debug!(path = %path.display(), "ignoring unparsable generation_config.json");
    }
    g
}
