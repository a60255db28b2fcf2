//! `rms_norm_eps` from config.json reaches every residual-stream RMSNorm (input,
//! post-attention, final), checked by an exact invariance rather than a tolerance. (The two
//! latent norms, `q_a_layernorm` and `kv_a_layernorm`, use 1e-6 whatever the config says, as
//! transformers and DeepSeek's code do; `transformers_f32.rs` catches a change there on this
//! same fixture.)
//!
//! RMSNorm(x; eps) = x / sqrt(mean(x²) + eps) · w is unchanged when x is scaled by s and eps by
//! s². Scaling the embedding, every `o_proj` and `down_proj` (so the whole residual stream is
//! s·h) by s = 2⁻⁴ and `rms_norm_eps` by s² = 2⁻⁸ therefore gives the same model (the latent
//! norms read projections of already-normalised rows, which do not move).
//! With a power of two every product, sum, sqrt and quotient scales exactly (no value nears the
//! subnormal range), so the logits must be bit-identical — in f32 and in bf16. A norm that
//! ignores the config (a hard-coded eps anywhere) sees eps·256 relative to its input instead:
//! the logits move. The fixture is `dense_only_v3` (rms_norm_eps 1e-5, F32 weights, q-LoRA).

use std::path::Path;

use concord_runtime::Precision;
use concord_tests::{fixtures_dir, load_cpu, prefill_logits, read_references};
use safetensors::tensor::TensorView;

/// The activation scale: a power of two, so scaling is exact.
const SCALE: f32 = 1.0 / 16.0;

/// How many leading f32 values of tensor `name` (of `numel`) the invariance scales by s.
fn scaled_prefix(name: &str, numel: usize) -> usize {
    let whole = name == "model.embed_tokens.weight"
        || name.ends_with(".self_attn.o_proj.weight")
        || name.ends_with("down_proj.weight");
    if whole {
        numel
    } else {
        0
    }
}

/// A copy of `src` with config `rms_norm_eps` set to `eps`, and, when `scale_weights`, the
/// weights of the invariance scaled by [`SCALE`].
fn modified_copy(src: &Path, eps: f64, scale_weights: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for name in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(name), dir.path().join(name)).expect(name);
    }
    let config_text = std::fs::read_to_string(src.join("config.json")).expect("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&config_text).expect("config.json");
    config["rms_norm_eps"] = serde_json::json!(eps);
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .expect("config.json");

    let bytes = std::fs::read(src.join("model.safetensors")).expect("model.safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("model.safetensors");
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut scaled = 0;
    for (name, view) in st.tensors() {
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}: F32 fixture");
        let mut values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        if scale_weights {
            let prefix = scaled_prefix(&name, values.len());
            for v in &mut values[..prefix] {
                *v *= SCALE;
            }
            scaled += usize::from(prefix > 0);
        }
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((name, view.dtype(), view.shape().to_vec(), data));
    }
    if scale_weights {
        // embed + per layer o_proj and down_proj.
        let layers = config["num_hidden_layers"].as_u64().unwrap() as usize;
        assert_eq!(
            scaled,
            1 + 2 * layers,
            "every tensor of the invariance found"
        );
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors"))
        .expect("write model.safetensors");
    dir
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn max_abs_change(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn rms_norm_eps_scales_with_the_activations_at_every_norm() {
    let src = fixtures_dir().join("dense_only_v3");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let eps = config["rms_norm_eps"].as_f64().unwrap();
    assert_eq!(eps, 1e-5, "the fixture's non-default eps");
    let refs = read_references(&src);
    let ids = refs["input_ids.0"].ids();
    let scale2 = f64::from(SCALE) * f64::from(SCALE);
    let scaled = modified_copy(&src, eps * scale2, true);
    for precision in [Precision::F32, Precision::Bf16] {
        let want = prefill_logits(&load_cpu(&src, Some(precision)), &ids);
        let got = prefill_logits(&load_cpu(scaled.path(), Some(precision)), &ids);
        println!(
            "{precision}: scaled model max |Δ| {:.3e}",
            max_abs_change(&got, &want)
        );
        assert_eq!(
            bits(&got),
            bits(&want),
            "{precision}: activations ×{SCALE} with eps ×{scale2} must give the same logits"
        );
    }
}

#[test]
fn rms_norm_eps_changes_the_logits_of_the_fixture() {
    // Without this, the invariance above could hold because eps never matters; 1e-5 → 1e-2
    // must move the f32 logits by far more than the f32 tolerance (6e-5, transformers_f32.rs).
    let src = fixtures_dir().join("dense_only_v3");
    let refs = read_references(&src);
    let ids = refs["input_ids.0"].ids();
    let changed = modified_copy(&src, 1e-2, false);
    let base = prefill_logits(&load_cpu(&src, Some(Precision::F32)), &ids);
    let moved = prefill_logits(&load_cpu(changed.path(), Some(Precision::F32)), &ids);
    let change = max_abs_change(&base, &moved);
    println!("eps 1e-5 → 1e-2: max |Δlogit| {change:.3e}");
    assert!(change > 1e-3, "eps 1e-2 moved the logits by only {change}");
}
