//! `concord convert`: FP8 → BF16 reproduces the bf16-mode logits of the FP8 original byte for
//! byte; BF16 → FP8 gives a checkpoint whose logits stay within quantization error; the output
//! is a valid sharded HF checkpoint.

use std::path::{Path, PathBuf};

use concord_runtime::convert::{convert_checkpoint, ConvertOptions, ConvertTarget};
use concord_runtime::{LoadOptions, LogitRows, Model, Precision};
use concord_tests::{fixtures_dir, max_abs, max_abs_diff, read_references};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("concord-convert-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn logits(dir: &Path, precision: Option<Precision>, ids: &[u32]) -> (Precision, Vec<f32>) {
    let backend = concord_runtime::open_backend("cpu").unwrap();
    let options = LoadOptions {
        precision,
        max_positions: Some(256),
        mtp: false,
        parallel: None,
    };
    let model = Model::load(dir, backend, &options, &mut |_, _| true).unwrap();
    let mut seq = model.new_sequence(ids.len()).unwrap();
    let l = model
        .forward(&mut [&mut seq], &[ids], LogitRows::All)
        .unwrap()
        .per_sequence
        .remove(0);
    (model.precision(), l)
}

fn convert(input: &Path, target: ConvertTarget, name: &str) -> PathBuf {
    let out = scratch(name);
    let options = ConvertOptions {
        target,
        shard_bytes: 256 << 10,
    };
    convert_checkpoint(input, &out, &options, &mut |_, _| true).unwrap();
    out
}

#[test]
fn fp8_to_bf16_reproduces_bf16_mode_logits_byte_for_byte() {
    let src = fixtures_dir().join("fp8_block_scaled");
    let ids = read_references(&src)["input_ids.0"].ids();
    let out = convert(&src, ConvertTarget::Bf16, "bf16");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert!(config.get("quantization_config").is_none());
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let files: std::collections::BTreeSet<&str> = index["weight_map"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        files.len() > 1,
        "a small shard size must give several shards: {files:?}"
    );
    assert!(!index["weight_map"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.ends_with("_scale_inv")));

    let (_, original) = logits(&src, Some(Precision::Bf16), &ids);
    let (native, converted) = logits(&out, None, &ids);
    assert_eq!(
        native,
        Precision::Bf16,
        "a BF16 checkpoint runs bf16 by default"
    );
    let same = original
        .iter()
        .zip(&converted)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(
        same && original.len() == converted.len(),
        "converted BF16 logits differ from bf16 mode on the FP8 original"
    );
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn bf16_to_fp8_stays_within_quantization_error() {
    let src = fixtures_dir().join("dense_only_v3");
    let refs = read_references(&src);
    let ids = refs["input_ids.0"].ids();
    let out = convert(&src, ConvertTarget::Fp8, "fp8");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["quantization_config"]["quant_method"], "fp8");
    let (native, got) = logits(&out, None, &ids);
    assert_eq!(native, Precision::Fp8);
    let want = &refs["logits.0"].values;
    let diff = max_abs_diff(&got, want);
    let tol = 0.15 * max_abs(want) + 0.15;
    assert!(diff <= tol, "fp8 conversion: max |Δ| {diff} > {tol}");
    // Loading the converted checkpoint in fp8 mode equals quantizing the original at load.
    let (_, at_load) = logits(&src, Some(Precision::Fp8), &ids);
    assert!(at_load
        .iter()
        .zip(&got)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn convert_refuses_a_non_empty_output_directory() {
    let out = scratch("busy");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let options = ConvertOptions {
        target: ConvertTarget::Bf16,
        shard_bytes: 1 << 20,
    };
    let err = convert_checkpoint(
        &fixtures_dir().join("dense_only_v3"),
        &out,
        &options,
        &mut |_, _| true,
    );
    assert!(err.is_err());
    assert!(out.join("keep.txt").is_file(), "existing files untouched");
    std::fs::remove_dir_all(out).unwrap();
}
