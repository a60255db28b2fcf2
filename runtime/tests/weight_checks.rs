//! Loading rejects corrupt weights and checkpoints the config does not describe: NaN/Inf in a
//! weight or an FP8 scale, e4m3fn NaN codes, layers beyond the config, a config that declares
//! fewer layers than the checkpoint holds; unknown extra tensors only warn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use concord_runtime::{LoadOptions, Model, Precision};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// A scratch copy of a fixture model directory.
fn copy_fixture(name: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("concord-wcheck-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn load(dir: &Path, precision: Option<Precision>) -> Result<Model, String> {
    let backend = concord_runtime::open_backend("cpu").expect("cpu backend");
    let options = LoadOptions {
        precision,
        max_positions: Some(64),
        mtp: false,
        parallel: None,
    };
    Model::load(dir, Arc::clone(&backend), &options, &mut |_, _| true).map_err(|e| e.to_string())
}

/// The shard of `dir` holding `tensor`.
fn shard_of(dir: &Path, tensor: &str) -> PathBuf {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "safetensors")
            && !path.ends_with("reference.safetensors")
        {
            let bytes = std::fs::read(&path).unwrap();
            let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
            if meta.tensors().contains_key(tensor) {
                return path;
            }
        }
    }
    panic!("{tensor} not in {}", dir.display())
}

/// Rewrites the shard holding `tensor`: `edit` gets every tensor's (dtype, shape, bytes).
fn rewrite_shard(
    dir: &Path,
    tensor: &str,
    edit: impl FnOnce(&mut BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>),
) {
    let path = shard_of(dir, tensor);
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let out = safetensors::serialize(views, None).unwrap();
    std::fs::write(&path, out).unwrap();
}

/// Overwrites element `index` (of `size` bytes) of `tensor` with `value`.
fn poke(dir: &Path, tensor: &str, index: usize, value: &[u8]) {
    rewrite_shard(dir, tensor, |t| {
        let data = &mut t.get_mut(tensor).unwrap().2;
        data[index * value.len()..(index + 1) * value.len()].copy_from_slice(value);
    });
}

fn assert_names(err: &str, needles: &[&str]) {
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in: {err}");
    }
}

const BF16_NAN: [u8; 2] = 0x7fc0u16.to_le_bytes();

#[test]
fn nan_in_a_bf16_weight_is_a_load_error_naming_tensor_and_index() {
    let dir = copy_fixture("qlora_null", "nan-bf16");
    let name = "model.layers.1.self_attn.o_proj.weight";
    poke(&dir, name, 37, &BF16_NAN);
    // Both conversions a dense weight can take: upcast (bf16) and block quantization (fp8).
    for precision in [Precision::Bf16, Precision::Fp8] {
        let e = load(&dir, Some(precision))
            .err()
            .expect("NaN weight must not load");
        assert_names(&e, &[name, "index 37", "NaN"]);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn inf_in_a_norm_weight_is_a_load_error() {
    let dir = copy_fixture("dense_only_v3", "inf-norm");
    let name = "model.norm.weight";
    poke(&dir, name, 3, &f32::NEG_INFINITY.to_le_bytes());
    let e = load(&dir, None).err().expect("Inf norm must not load");
    assert_names(&e, &[name, "index 3", "-inf"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn inf_in_an_fp8_scale_is_a_load_error_naming_the_scale_and_index() {
    let dir = copy_fixture("fp8_block_scaled", "inf-scale");
    let scale = "model.layers.0.mlp.down_proj.weight_scale_inv";
    poke(&dir, scale, 4, &f32::INFINITY.to_le_bytes());
    // fp8 keeps the stored codes and scales; bf16 dequantizes them.
    for precision in [Precision::Fp8, Precision::Bf16] {
        let e = load(&dir, Some(precision))
            .err()
            .expect("Inf scale must not load");
        assert_names(&e, &[scale, "index 4", "inf"]);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn e4m3_nan_code_is_a_load_error() {
    let dir = copy_fixture("fp8_block_scaled", "nan-code");
    let name = "model.layers.1.self_attn.kv_b_proj.weight";
    for code in [0x7fu8, 0xff] {
        poke(&dir, name, 101, &[code]);
        for precision in [Precision::Fp8, Precision::Bf16] {
            let e = load(&dir, Some(precision))
                .err()
                .expect("NaN code must not load");
            assert_names(&e, &[name, "index 101"]);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_layer_beyond_the_config_is_an_error() {
    // dense_only_v3: 2 layers, no MTP; a layer 2 copied from layer 1 is undescribed.
    let dir = copy_fixture("dense_only_v3", "extra-layer");
    let name = "model.layers.1.input_layernorm.weight";
    rewrite_shard(&dir, name, |t| {
        let copy = t[name].clone();
        t.insert("model.layers.2.input_layernorm.weight".into(), copy);
    });
    let e = load(&dir, None)
        .err()
        .expect("undescribed layer must not load");
    assert_names(
        &e,
        &[
            "model.layers.2.input_layernorm.weight",
            "num_hidden_layers = 2",
        ],
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_config_with_fewer_layers_than_the_checkpoint_is_an_error() {
    // fp8_block_scaled: 2 layers + 1 MTP module (layer 2). Declaring 1 layer would read the
    // decoder layer 1 as the MTP module and run a truncated model.
    let dir = copy_fixture("fp8_block_scaled", "fewer-layers");
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["num_hidden_layers"] = 1.into();
    std::fs::write(&path, cfg.to_string()).unwrap();
    let e = load(&dir, None)
        .err()
        .expect("truncated config must not load");
    assert_names(&e, &["layer", "num_hidden_layers = 1"]);
    std::fs::remove_dir_all(dir).unwrap();

    // dense_only_v3: 2 layers, no MTP. Declaring 1 layer + 1 MTP module puts decoder layer 1
    // in the MTP range, where it must be recognised as a decoder layer (no eh_proj).
    let dir = copy_fixture("dense_only_v3", "fewer-layers-mtp");
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["num_hidden_layers"] = 1.into();
    cfg["num_nextn_predict_layers"] = 1.into();
    std::fs::write(&path, cfg.to_string()).unwrap();
    let e = load(&dir, None)
        .err()
        .expect("truncated config must not load");
    assert_names(
        &e,
        &[
            "model.layers.1.",
            "without any MTP tensor",
            "num_hidden_layers = 1",
        ],
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_mtp_layer_and_unknown_extra_tensors_still_load() {
    let dir = copy_fixture("fp8_block_scaled", "extras");
    let name = "model.layers.0.input_layernorm.weight";
    rewrite_shard(&dir, name, |t| {
        t.insert(
            "vision_tower.patch_embed.weight".into(),
            (
                Dtype::F32,
                vec![2],
                [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        );
    });
    load(&dir, None).expect("extra tensors only warn; the MTP layer 2 is described");
    std::fs::remove_dir_all(dir).unwrap();
}
