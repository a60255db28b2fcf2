//! Every bounded `config.json` field over its documented limit (docs/limits.md) is an error
//! naming the field and the limit, returned before anything is sized from the config; and the
//! regression inputs from fuzzing (huge layers / experts / positions) fail fast.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use concord_loader::ModelConfig;
use serde_json::{json, Value};

fn fixture_config() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/fp8_block_scaled/config.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Validation error for the fixture config with `pointer` (a JSON pointer) set to `value`.
fn error_with(pointer: &str, value: Value) -> String {
    let mut cfg = fixture_config();
    *cfg.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
    let start = Instant::now();
    let result = ModelConfig::from_json_value(cfg).and_then(|c| c.validate());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{pointer}: validation took {:?}",
        start.elapsed()
    );
    result.expect_err(pointer).to_string()
}

#[test]
fn fixture_config_is_within_limits() {
    let cfg = ModelConfig::from_json_value(fixture_config()).unwrap();
    cfg.validate().unwrap();
}

#[test]
fn each_field_over_its_limit_names_field_and_limit() {
    // (field, JSON pointer, limit) — the limits docs/limits.md documents.
    let cases: &[(&str, &str, u64)] = &[
        (
            "max_position_embeddings",
            "/max_position_embeddings",
            1 << 24,
        ),
        ("num_hidden_layers", "/num_hidden_layers", 1024),
        ("num_nextn_predict_layers", "/num_nextn_predict_layers", 16),
        ("n_routed_experts", "/n_routed_experts", 1 << 16),
        ("n_shared_experts", "/n_shared_experts", 1024),
        ("vocab_size", "/vocab_size", 1 << 24),
        ("hidden_size", "/hidden_size", 1 << 16),
        ("intermediate_size", "/intermediate_size", 1 << 20),
        ("moe_intermediate_size", "/moe_intermediate_size", 1 << 20),
        ("num_attention_heads", "/num_attention_heads", 4096),
        ("num_key_value_heads", "/num_key_value_heads", 4096),
        ("qk_nope_head_dim", "/qk_nope_head_dim", 4096),
        ("qk_rope_head_dim", "/qk_rope_head_dim", 4096),
        ("v_head_dim", "/v_head_dim", 4096),
        ("q_lora_rank", "/q_lora_rank", 1 << 16),
        ("kv_lora_rank", "/kv_lora_rank", 1 << 16),
        ("n_group", "/n_group", 1 << 16),
        ("topk_group", "/topk_group", 1 << 16),
        ("num_experts_per_tok", "/num_experts_per_tok", 1 << 16),
        (
            "rope_scaling.original_max_position_embeddings",
            "/rope_scaling/original_max_position_embeddings",
            1 << 24,
        ),
        (
            "quantization_config.weight_block_size",
            "/quantization_config/weight_block_size/0",
            1 << 16,
        ),
    ];
    for &(field, pointer, limit) in cases {
        // Just over the limit, and far over it (the fuzz findings used 2^40 and 2^62).
        for value in [limit + 1, 1 << 40, 1 << 62] {
            let e = error_with(pointer, json!(value));
            assert!(
                e.contains(&format!("`{field}`")) && e.contains(&format!("limit {limit}")),
                "{field} = {value}: {e}"
            );
        }
        // At the limit, the bound itself does not fire (other checks may).
        let mut cfg = fixture_config();
        *cfg.pointer_mut(pointer).unwrap() = json!(limit);
        if let Err(e) = ModelConfig::from_json_value(cfg).and_then(|c| c.validate()) {
            let e = e.to_string();
            assert!(!e.contains("exceeds the limit"), "{field} = {limit}: {e}");
        }
    }
}

#[test]
fn counts_must_be_consistent() {
    let e = error_with("/num_experts_per_tok", json!(9));
    assert!(
        e.contains("num_experts_per_tok = 9 must be in 1..=8"),
        "{e}"
    );
    let e = error_with("/n_group", json!(3));
    assert!(e.contains("divisible by n_group = 3"), "{e}");
    let e = error_with("/topk_group", json!(5));
    assert!(e.contains("topk_group = 5 must be in 1..=4"), "{e}");
}

#[test]
fn float_fields_must_be_finite_and_positive() {
    for (pointer, value, needle) in [
        (
            "/rms_norm_eps",
            json!(0.0),
            "rms_norm_eps must be finite and > 0",
        ),
        (
            "/rms_norm_eps",
            json!(-1e-6),
            "rms_norm_eps must be finite and > 0",
        ),
        // 1e300 is finite as f64 but infinite once stored as the f32 HF adds.
        (
            "/rms_norm_eps",
            json!(1e300),
            "rms_norm_eps must be finite and > 0",
        ),
        ("/rope_theta", json!(1e300), "rope_theta must be finite"),
        (
            "/rope_scaling/factor",
            json!(0.0),
            "rope_scaling.factor must be finite and > 0",
        ),
        (
            "/rope_scaling/factor",
            json!(-2.0),
            "rope_scaling.factor must be finite and > 0",
        ),
        (
            "/rope_scaling/beta_fast",
            json!(-1.0),
            "beta_fast/beta_slow must be finite and > 0",
        ),
        (
            "/routed_scaling_factor",
            json!(0.0),
            "routed_scaling_factor must be finite and > 0",
        ),
    ] {
        let e = error_with(pointer, value.clone());
        assert!(e.contains(needle), "{pointer} = {value}: {e}");
    }
    // Fields the fixture does not have.
    for (key, value, needle) in [
        (
            "attention_factor",
            json!(0.0),
            "rope_scaling.attention_factor must be > 0",
        ),
        (
            "attention_factor",
            json!(-1.0),
            "rope_scaling.attention_factor must be > 0",
        ),
    ] {
        let mut cfg = fixture_config();
        cfg["rope_scaling"][key] = value.clone();
        let e = ModelConfig::from_json_value(cfg)
            .and_then(|c| c.validate())
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{key} = {value}: {e}");
    }
}
