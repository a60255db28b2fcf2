//! A random-weight checkpoint of DeepSeek-V3 proportions (MLA with q-LoRA, sigmoid grouped
//! routing, shared expert, YaRN), written to disk so it loads through the normal path, with a
//! small byte-level BPE tokenizer so other runtimes' converters accept the directory too.

use std::collections::BTreeMap;
use std::path::Path;

use concord_core::convert::f32_to_bf16;
use concord_core::{Error, Result};

/// Sizes of the synthetic model; `scale` multiplies the hidden width (V3 itself is 7168).
pub struct SyntheticSpec {
    /// Hidden width.
    pub hidden: usize,
    /// Decoder layers (the first is dense, as V3's first three are).
    pub layers: usize,
}

impl SyntheticSpec {
    pub(crate) fn config(&self) -> serde_json::Value {
        let h = self.hidden;
        // V3 ratios: heads = H/56, q_lora = 1536/7168 H, kv_lora = 512/7168 H,
        // moe_intermediate = 2048/7168 H, intermediate = 18432/7168 H, 256 experts top 8.
        serde_json::json!({
            "architectures": ["DeepseekV3ForCausalLM"],
            "model_type": "deepseek_v3",
            "vocab_size": 16384,
            "hidden_size": h,
            "intermediate_size": h * 18 / 7,
            "moe_intermediate_size": h * 2 / 7,
            "num_hidden_layers": self.layers,
            "num_attention_heads": (h / 56).max(1),
            "num_key_value_heads": (h / 56).max(1),
            "n_shared_experts": 1,
            "n_routed_experts": 64,
            "num_experts_per_tok": 8,
            "routed_scaling_factor": 2.5,
            "n_group": 8,
            "topk_group": 4,
            "topk_method": "noaux_tc",
            "scoring_func": "sigmoid",
            "norm_topk_prob": true,
            "first_k_dense_replace": 1,
            "moe_layer_freq": 1,
            "q_lora_rank": h * 3 / 14,
            "kv_lora_rank": h / 14,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "v_head_dim": 128,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                             "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
            "max_position_embeddings": 8192,
            "tie_word_embeddings": false,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "torch_dtype": "bfloat16"
        })
    }

    /// Writes config.json, model.safetensors (BF16, random), tokenizer.json and
    /// tokenizer_config.json into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let config = self.config();
        let cfg = concord_loader::ModelConfig::from_json_value(config.clone())?;
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for t in concord_loader::expected_tensors(&cfg, false) {
            let n: usize = t.shape.iter().product();
            let is_norm = matches!(t.role, concord_loader::TensorRole::Norm);
            let is_bias = matches!(t.role, concord_loader::TensorRole::Bias);
            let fan_in = *t.shape.last().unwrap_or(&1) as f32;
            let std = 1.0 / fan_in.sqrt();
            let mut values = Vec::with_capacity(n);
            for _ in 0..n {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let u = (rng >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                values.push(if is_norm {
                    1.0 + 0.1 * u
                } else if is_bias {
                    0.01 * u
                } else {
                    std * u * 1.7
                });
            }
            let bytes = if is_bias {
                values.iter().flat_map(|v| v.to_le_bytes()).collect()
            } else {
                values
                    .iter()
                    .flat_map(|v| f32_to_bf16(*v).to_le_bytes())
                    .collect()
            };
            tensors.insert(t.name, (t.shape, bytes));
        }
        let views = tensors
            .iter()
            .map(|(name, (shape, bytes))| {
                let dtype = if bytes.len() == shape.iter().product::<usize>() * 4 {
                    safetensors::Dtype::F32
                } else {
                    safetensors::Dtype::BF16
                };
                safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::invalid(format!("{name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let path = dir.join("model.safetensors");
        safetensors::serialize_to_file(views, None, &path)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let text =
            serde_json::to_string_pretty(&config).map_err(|e| Error::invalid(e.to_string()))?;
        std::fs::write(dir.join("config.json"), text).map_err(|e| Error::io(dir, e))?;
        write_tokenizer(dir)
    }
}

/// DeepSeek-V3's begin- and end-of-sentence tokens (ids 0 and 1, as config.json says).
const BOS: &str = "<\u{ff5c}begin\u{2581}of\u{2581}sentence\u{ff5c}>";
const EOS: &str = "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>";

/// A few merges, so the BPE model has some (converters refuse a BPE tokenizer without any).
const MERGES: [(&str, &str); 6] = [
    ("t", "h"),
    ("h", "e"),
    ("i", "n"),
    ("e", "r"),
    ("a", "n"),
    ("\u{120}", "t"),
];

/// GPT-2's byte-level alphabet: printable bytes stand for themselves, the others for
/// U+0100 onwards in byte order (the mapping every byte-level BPE tokenizer uses).
fn byte_level_alphabet() -> Vec<char> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next_stand_in = 0x100u32;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                char::from(b)
            } else {
                let c = char::from_u32(next_stand_in).unwrap_or('?');
                next_stand_in += 1;
                c
            }
        })
        .collect()
}

/// Writes tokenizer.json (byte-level BPE: BOS, EOS, the 256 byte tokens, [`MERGES`]) and
/// tokenizer_config.json. The benchmark feeds token ids, so the vocabulary only has to load.
fn write_tokenizer(dir: &Path) -> Result<()> {
    let mut vocab = serde_json::Map::new();
    vocab.insert(BOS.into(), 0.into());
    vocab.insert(EOS.into(), 1.into());
    for c in byte_level_alphabet() {
        let id = vocab.len();
        vocab.insert(c.to_string(), id.into());
    }
    for (a, b) in MERGES {
        let id = vocab.len();
        vocab.insert(format!("{a}{b}"), id.into());
    }
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                           "rstrip": false, "normalized": false, "special": true})
    };
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, BOS), special(1, EOS)],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                          "use_regex": true},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false,
                           "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab,
                  "merges": MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()}
    });
    let config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "add_bos_token": true,
        "add_eos_token": false,
        "model_max_length": 8192
    });
    for (name, value) in [
        ("tokenizer.json", tokenizer),
        ("tokenizer_config.json", config),
    ] {
        let text =
            serde_json::to_string_pretty(&value).map_err(|e| Error::invalid(e.to_string()))?;
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}
