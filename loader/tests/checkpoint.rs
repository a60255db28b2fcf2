//! Tiny checkpoints written with the `safetensors` crate: opening (single file, sharded),
//! validation against the config, upcasts and FP8 block dequantization.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use concord_core::convert::{e4m3_to_f32, f32_to_bf16};
use concord_core::DType;
use concord_loader::{
    dequantize_block_fp8, expected_tensors, validate_checkpoint, Checkpoint, ModelConfig,
    TensorRole,
};
use safetensors::tensor::TensorView as StView;
use safetensors::Dtype;

/// A small V3-shaped model: 3 layers (layer 0 dense), 4 experts in 2 groups, q LoRA, 1 MTP layer,
/// FP8 blocks of 16×16 (so kv_a_proj_with_mqa [20, 32] has a ragged scale row).
const TINY: &str = r#"{
  "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
  "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "moe_intermediate_size": 16,
  "num_hidden_layers": 3, "num_attention_heads": 2, "num_key_value_heads": 2,
  "n_shared_experts": 1, "n_routed_experts": 4, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1,
  "topk_method": "noaux_tc", "scoring_func": "sigmoid", "norm_topk_prob": true, "routed_scaling_factor": 2.5,
  "first_k_dense_replace": 1, "moe_layer_freq": 1,
  "q_lora_rank": 24, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
  "num_nextn_predict_layers": 1, "rms_norm_eps": 1e-6, "rope_theta": 10000, "max_position_embeddings": 256,
  "bos_token_id": 0, "eos_token_id": 1, "tie_word_embeddings": false,
  "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [16, 16]}
}"#;

fn tiny() -> ModelConfig {
    let c = ModelConfig::from_json_str(TINY).unwrap();
    c.validate().unwrap();
    c
}

/// One tensor to write: dtype, shape, bytes.
#[derive(Clone)]
struct T {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn bf16_bytes(vals: impl IntoIterator<Item = f32>) -> Vec<u8> {
    vals.into_iter()
        .flat_map(|v| f32_to_bf16(v).to_le_bytes())
        .collect()
}

fn f32_bytes(vals: impl IntoIterator<Item = f32>) -> Vec<u8> {
    vals.into_iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Deterministic, valid (non-NaN) e4m3 codes.
fn fp8_codes(n: usize, seed: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 37 + seed * 11) % 0x7e) as u8 | if i % 3 == 0 { 0x80 } else { 0 })
        .collect()
}

/// Every tensor `cfg` needs (with MTP), FP8 for quantizable weights plus their scales.
fn full_tensors(cfg: &ModelConfig) -> BTreeMap<String, T> {
    let [bo, bi] = cfg.weight_block_size();
    let mut out = BTreeMap::new();
    for (k, t) in expected_tensors(cfg, true).into_iter().enumerate() {
        let n: usize = t.shape.iter().product();
        match t.role {
            TensorRole::Weight { quantizable: true } => {
                let sshape = vec![t.shape[0].div_ceil(bo), t.shape[1].div_ceil(bi)];
                let sn: usize = sshape.iter().product();
                out.insert(
                    format!("{}_scale_inv", t.name),
                    T {
                        dtype: Dtype::F32,
                        shape: sshape,
                        data: f32_bytes((0..sn).map(|i| 0.5 + i as f32 * 0.25)),
                    },
                );
                out.insert(
                    t.name,
                    T {
                        dtype: Dtype::F8_E4M3,
                        shape: t.shape,
                        data: fp8_codes(n, k),
                    },
                );
            }
            TensorRole::Bias => {
                out.insert(
                    t.name,
                    T {
                        dtype: Dtype::F32,
                        shape: t.shape,
                        data: f32_bytes((0..n).map(|i| i as f32)),
                    },
                );
            }
            _ => {
                out.insert(
                    t.name,
                    T {
                        dtype: Dtype::BF16,
                        shape: t.shape,
                        data: bf16_bytes((0..n).map(|i| (i % 7) as f32 - 3.0)),
                    },
                );
            }
        }
    }
    out
}

/// A fresh, empty temp directory unique to this test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("concord-loader-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn serialize(tensors: &BTreeMap<String, T>) -> Vec<u8> {
    let views: Vec<(String, StView<'_>)> = tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                StView::new(t.dtype, t.shape.clone(), &t.data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// Writes `tensors` as `model.safetensors` (shards == 0) or as `shards` files plus an index.
fn write(dir: &Path, tensors: &BTreeMap<String, T>, shards: usize) {
    if shards == 0 {
        std::fs::write(dir.join("model.safetensors"), serialize(tensors)).unwrap();
        return;
    }
    let mut parts: Vec<BTreeMap<String, T>> = vec![BTreeMap::new(); shards];
    let mut weight_map = serde_json::Map::new();
    let mut total = 0usize;
    for (i, (k, t)) in tensors.iter().enumerate() {
        let s = i % shards;
        parts[s].insert(k.clone(), t.clone());
        let file = format!("model-{:05}-of-{:05}.safetensors", s + 1, shards);
        weight_map.insert(k.clone(), file.into());
        total += t.data.len();
    }
    for (s, part) in parts.iter().enumerate() {
        std::fs::write(
            dir.join(format!("model-{:05}-of-{:05}.safetensors", s + 1, shards)),
            serialize(part),
        )
        .unwrap();
    }
    let index = serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
}

fn open_with(name: &str, tensors: &BTreeMap<String, T>, shards: usize) -> (PathBuf, Checkpoint) {
    let dir = temp_dir(name);
    write(&dir, tensors, shards);
    let ck = Checkpoint::open(&dir).unwrap();
    (dir, ck)
}

#[test]
fn single_file_validates() {
    let cfg = tiny();
    let tensors = full_tensors(&cfg);
    let (dir, ck) = open_with("single", &tensors, 0);
    assert_eq!(ck.files(), &[dir.join("model.safetensors")]);
    assert_eq!(ck.len(), tensors.len());
    assert_eq!(ck.names().count(), tensors.len());
    assert!(
        ck.names().zip(ck.names().skip(1)).all(|(a, b)| a < b),
        "names are sorted"
    );
    validate_checkpoint(&cfg, &ck, false).unwrap();
    validate_checkpoint(&cfg, &ck, true).unwrap();
    let t = ck
        .tensor("model.layers.1.self_attn.kv_a_proj_with_mqa.weight")
        .unwrap();
    assert_eq!(
        (t.dtype, t.shape, t.numel()),
        (DType::F8E4M3, &[20usize, 32][..], 640)
    );
    assert_eq!(t.file, dir.join("model.safetensors"));
    assert_eq!(
        t.data,
        &tensors["model.layers.1.self_attn.kv_a_proj_with_mqa.weight"].data[..]
    );
    // A path to the file itself opens too.
    let ck2 = Checkpoint::open(&dir.join("model.safetensors")).unwrap();
    assert_eq!(ck2.len(), ck.len());
    drop((ck, ck2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sharded_with_index_validates() {
    let cfg = tiny();
    let tensors = full_tensors(&cfg);
    let (dir, ck) = open_with("sharded", &tensors, 3);
    assert_eq!(ck.files().len(), 3);
    assert_eq!(ck.len(), tensors.len());
    validate_checkpoint(&cfg, &ck, true).unwrap();
    let total: usize = tensors.values().map(|t| t.data.len()).sum();
    assert_eq!(ck.index_metadata().unwrap()["total_size"], total);
    assert_eq!(ck.total_bytes(), total as u64);
    // Each tensor resolves to the shard the index names, with the right bytes.
    for (i, (name, t)) in tensors.iter().enumerate() {
        let v = ck.tensor(name).unwrap();
        assert_eq!(v.data, &t.data[..], "{name}");
        assert_eq!(
            v.file,
            dir.join(format!("model-{:05}-of-00003.safetensors", i % 3 + 1))
        );
    }
    drop(ck);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn index_with_missing_shard_or_tensor() {
    let cfg = tiny();
    let tensors = full_tensors(&cfg);
    let dir = temp_dir("badindex");
    write(&dir, &tensors, 2);
    std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).unwrap();
    let e = Checkpoint::open(&dir).unwrap_err().to_string();
    assert!(
        e.contains("model-00002-of-00002.safetensors") && e.contains("do not exist"),
        "{e}"
    );

    // weight_map points a tensor at the wrong shard.
    write(&dir, &tensors, 2);
    let index_path = dir.join("model.safetensors.index.json");
    let mut index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    let first = tensors.keys().next().unwrap().clone(); // lives in shard 1
    index["weight_map"][&first] = "model-00002-of-00002.safetensors".into();
    std::fs::write(&index_path, index.to_string()).unwrap();
    let e = Checkpoint::open(&dir).unwrap_err().to_string();
    assert!(
        e.contains(&first) && e.contains("not in their shard"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn open_errors() {
    let dir = temp_dir("empty");
    let e = Checkpoint::open(&dir).unwrap_err().to_string();
    assert!(e.contains("no model.safetensors.index.json"), "{e}");
    std::fs::write(dir.join("model.safetensors"), b"garbage").unwrap();
    let e = Checkpoint::open(&dir).unwrap_err().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("invalid safetensors"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let e = Checkpoint::open(&dir).unwrap_err().to_string();
    assert!(e.contains("not found"), "{e}");
}

fn validate_err(name: &str, tensors: &BTreeMap<String, T>, include_mtp: bool) -> String {
    let cfg = tiny();
    let (dir, ck) = open_with(name, tensors, 0);
    let e = validate_checkpoint(&cfg, &ck, include_mtp)
        .unwrap_err()
        .to_string();
    drop(ck);
    std::fs::remove_dir_all(&dir).unwrap();
    e
}

#[test]
fn missing_tensor_is_reported() {
    let mut t = full_tensors(&tiny());
    t.remove("model.layers.2.mlp.experts.3.down_proj.weight");
    t.remove("model.layers.2.mlp.experts.3.down_proj.weight_scale_inv");
    t.remove("lm_head.weight");
    let e = validate_err("missing", &t, false);
    assert!(e.contains("2 problem(s)"), "{e}");
    assert!(e.contains("missing tensor `model.layers.2.mlp.experts.3.down_proj.weight` (expected shape [32, 16])"), "{e}");
    assert!(e.contains("missing tensor `lm_head.weight`"), "{e}");
}

#[test]
fn wrong_shape_is_reported() {
    let mut t = full_tensors(&tiny());
    let n = "model.layers.0.self_attn.kv_a_layernorm.weight";
    t.insert(
        n.into(),
        T {
            dtype: Dtype::BF16,
            shape: vec![17],
            data: bf16_bytes((0..17).map(|_| 1.0)),
        },
    );
    let e = validate_err("shape", &t, false);
    assert!(
        e.contains(n)
            && e.contains("expected shape [16], found [17]")
            && e.contains("model.safetensors"),
        "{e}"
    );
}

#[test]
fn wrong_dtype_is_reported() {
    let mut t = full_tensors(&tiny());
    // A norm stored as FP8 and a head stored as I32.
    let norm = "model.norm.weight";
    t.insert(
        norm.into(),
        T {
            dtype: Dtype::F8_E4M3,
            shape: vec![32],
            data: vec![0x38; 32],
        },
    );
    t.insert(
        "lm_head.weight".into(),
        T {
            dtype: Dtype::I32,
            shape: vec![64, 32],
            data: vec![0; 64 * 32 * 4],
        },
    );
    let e = validate_err("dtype", &t, false);
    assert!(
        e.contains(norm)
            && e.contains("expected dtype F32, BF16 or F16 for a norm weight, found F8_E4M3"),
        "{e}"
    );
    assert!(
        e.contains("`lm_head.weight`") && e.contains("found I32"),
        "{e}"
    );
}

#[test]
fn missing_or_bad_scale_is_reported() {
    let mut t = full_tensors(&tiny());
    let w = "model.layers.1.self_attn.o_proj.weight";
    t.remove(&format!("{w}_scale_inv"));
    let kv = "model.layers.1.self_attn.kv_a_proj_with_mqa.weight_scale_inv";
    t.insert(
        kv.into(),
        T {
            dtype: Dtype::F32,
            shape: vec![1, 2],
            data: f32_bytes([1.0, 1.0]),
        },
    );
    let e = validate_err("scale", &t, false);
    assert!(
        e.contains(w) && e.contains("is F8_E4M3 but its scale") && e.contains("[2, 1]"),
        "{e}"
    );
    assert!(
        e.contains(kv) && e.contains("expected F32 [2, 2]") && e.contains("found F32 [1, 2]"),
        "{e}"
    );
}

#[test]
fn many_problems_are_counted_and_capped() {
    let mut t = full_tensors(&tiny());
    let victims: Vec<String> = t
        .keys()
        .filter(|k| k.contains("layers.2.mlp.experts") && !k.ends_with("_scale_inv"))
        .cloned()
        .collect();
    assert_eq!(victims.len(), 12);
    for v in &victims {
        t.remove(v);
    }
    for l in 0..3 {
        t.remove(&format!("model.layers.{l}.input_layernorm.weight"));
        t.remove(&format!("model.layers.{l}.post_attention_layernorm.weight"));
    }
    let e = validate_err("many", &t, false);
    assert!(e.contains("18 problem(s)"), "{e}");
    t.remove("model.norm.weight");
    t.remove("model.embed_tokens.weight");
    t.remove("lm_head.weight");
    let e = validate_err("many2", &t, false);
    assert!(
        e.contains("21 problem(s)") && e.contains("… and 1 more"),
        "{e}"
    );
    assert_eq!(e.matches("\n  - ").count(), 20, "{e}");
}

#[test]
fn mtp_and_extras_are_skipped_unless_asked() {
    let mut t = full_tensors(&tiny());
    // Break the MTP layer (3) and add harmless extras.
    t.remove("model.layers.3.eh_proj.weight");
    t.insert(
        "model.layers.0.self_attn.rotary_emb.inv_freq".into(),
        T {
            dtype: Dtype::F32,
            shape: vec![2],
            data: f32_bytes([1.0, 0.01]),
        },
    );
    t.insert(
        "some.unknown.tensor".into(),
        T {
            dtype: Dtype::F64,
            shape: vec![1],
            data: vec![0; 8],
        },
    );
    let cfg = tiny();
    let (dir, ck) = open_with("mtp", &t, 0);
    validate_checkpoint(&cfg, &ck, false).unwrap();
    let e = validate_checkpoint(&cfg, &ck, true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.layers.3.eh_proj.weight") && e.contains("1 problem(s)"),
        "{e}"
    );
    // Unsupported dtypes: `tensor` says which, `get` is None, metadata still visible.
    let err = ck.tensor("some.unknown.tensor").unwrap_err().to_string();
    assert!(
        err.contains("F64")
            && err.contains("some.unknown.tensor")
            && err.contains("model.safetensors"),
        "{err}"
    );
    assert!(ck.get("some.unknown.tensor").is_none());
    assert_eq!(ck.dtype_name("some.unknown.tensor"), Some("F64"));
    let err = ck.tensor("nope").unwrap_err().to_string();
    assert!(err.contains("`nope` not found"), "{err}");
    drop(ck);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bf16_checkpoint_without_quantization_validates() {
    // Same model, every weight BF16, no quantization_config (like a dequantized checkpoint).
    let mut v: serde_json::Value = serde_json::from_str(TINY).unwrap();
    v.as_object_mut().unwrap().remove("quantization_config");
    let cfg = ModelConfig::from_json_str(&v.to_string()).unwrap();
    let mut t = BTreeMap::new();
    for e in expected_tensors(&cfg, false) {
        let n: usize = e.shape.iter().product();
        t.insert(
            e.name,
            T {
                dtype: Dtype::BF16,
                shape: e.shape,
                data: bf16_bytes((0..n).map(|_| 0.5)),
            },
        );
    }
    let (dir, ck) = open_with("bf16", &t, 2);
    validate_checkpoint(&cfg, &ck, false).unwrap();
    drop(ck);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn upcasts_are_exact() {
    let mut t = BTreeMap::new();
    let f32s = [1.5f32, -0.0, f32::MIN_POSITIVE, 3.4e38, 1.0e-45];
    t.insert(
        "f32".to_string(),
        T {
            dtype: Dtype::F32,
            shape: vec![5],
            data: f32_bytes(f32s),
        },
    );
    let bf = [0x3f80u16, 0xc000, 0x0001, 0x7f7f, 0x8000];
    t.insert(
        "bf16".to_string(),
        T {
            dtype: Dtype::BF16,
            shape: vec![5],
            data: bf.iter().flat_map(|b| b.to_le_bytes()).collect(),
        },
    );
    let e4 = [
        0x38u8, 0x3a, 0x1d, 0x42, 0x77, 0x78, 0x79, 0x7e, 0xfe, 0x01, 0x80,
    ];
    t.insert(
        "e4m3".to_string(),
        T {
            dtype: Dtype::F8_E4M3,
            shape: vec![11],
            data: e4.to_vec(),
        },
    );
    let h = [0x3c00u16, 0xc000, 0x0001, 0x7bff];
    t.insert(
        "f16".to_string(),
        T {
            dtype: Dtype::F16,
            shape: vec![2, 2],
            data: h.iter().flat_map(|b| b.to_le_bytes()).collect(),
        },
    );
    t.insert(
        "e5m2".to_string(),
        T {
            dtype: Dtype::F8_E5M2,
            shape: vec![3],
            data: vec![0x3c, 0xc0, 0x7b],
        },
    );
    t.insert(
        "ids".to_string(),
        T {
            dtype: Dtype::I32,
            shape: vec![1],
            data: vec![1, 0, 0, 0],
        },
    );
    let (dir, ck) = open_with("upcast", &t, 0);

    let got = ck.tensor("f32").unwrap().to_f32().unwrap();
    assert_eq!(
        got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        f32s.map(f32::to_bits).to_vec()
    );
    let got = ck.tensor("bf16").unwrap().to_f32().unwrap();
    assert_eq!(
        got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        bf.map(|b| (b as u32) << 16).to_vec()
    );
    let got = ck.tensor("e4m3").unwrap().to_f32().unwrap();
    let want = [
        1.0,
        1.25,
        0.1015625,
        2.5,
        240.0,
        256.0,
        288.0,
        448.0,
        -448.0,
        2f32.powi(-9),
        -0.0,
    ];
    assert_eq!(
        got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        want.map(f32::to_bits).to_vec()
    );
    let got = ck.tensor("f16").unwrap().to_f32().unwrap();
    assert_eq!(got, vec![1.0, -2.0, 2f32.powi(-24), 65504.0]);
    let got = ck.tensor("e5m2").unwrap().to_f32().unwrap();
    assert_eq!(got, vec![1.0, -2.0, 57344.0]);
    let e = ck.tensor("ids").unwrap().to_f32().unwrap_err().to_string();
    assert!(e.contains("ids") && e.contains("I32"), "{e}");
    drop(ck);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn block_fp8_dequantization() {
    // [20, 24] weight with 16×16 blocks: scale [2, 2], ragged in both directions.
    let (rows, cols) = (20usize, 24usize);
    let codes = fp8_codes(rows * cols, 5);
    let scales = [0.5f32, 2.0, 0.1, 3.0e-3];
    let mut t = BTreeMap::new();
    t.insert(
        "w.weight".to_string(),
        T {
            dtype: Dtype::F8_E4M3,
            shape: vec![rows, cols],
            data: codes.clone(),
        },
    );
    t.insert(
        "w.weight_scale_inv".to_string(),
        T {
            dtype: Dtype::F32,
            shape: vec![2, 2],
            data: f32_bytes(scales),
        },
    );
    t.insert(
        "bad_scale".to_string(),
        T {
            dtype: Dtype::F32,
            shape: vec![2, 1],
            data: f32_bytes([1.0, 1.0]),
        },
    );
    let (dir, ck) = open_with("dequant", &t, 0);
    let w = ck.tensor("w.weight").unwrap();
    let s = ck.tensor("w.weight_scale_inv").unwrap();
    let got = dequantize_block_fp8(&w, &s, [16, 16]).unwrap();
    for i in 0..rows {
        for j in 0..cols {
            let want = e4m3_to_f32(codes[i * cols + j]) * scales[(i / 16) * 2 + j / 16];
            assert_eq!(got[i * cols + j].to_bits(), want.to_bits(), "({i}, {j})");
        }
    }
    let e = dequantize_block_fp8(&w, &ck.tensor("bad_scale").unwrap(), [16, 16])
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad_scale") && e.contains("[2, 2]"), "{e}");
    let e = dequantize_block_fp8(&s, &s, [16, 16])
        .unwrap_err()
        .to_string();
    assert!(e.contains("F8_E4M3"), "{e}");
    drop(ck);
    std::fs::remove_dir_all(&dir).unwrap();
}
