//! The tensor inventory a config implies, checked against the counts of spec §1.3.

#[path = "data/configs.rs"]
mod configs;

use std::collections::HashMap;

use concord_loader::{expected_tensors, is_mtp_tensor, layer_index, ModelConfig, TensorRole};
use configs::{V2_LITE_CONFIG, V3_CONFIG};

fn numel(s: &[usize]) -> u64 {
    s.iter().map(|&x| x as u64).product()
}

#[test]
fn v3_counts_match_spec() {
    let c = ModelConfig::from_json_str(V3_CONFIG).unwrap();
    let all = expected_tensors(&c, true);
    let quantized = all
        .iter()
        .filter(|t| t.role == TensorRole::Weight { quantizable: true })
        .count();
    // Every quantizable weight has one scale tensor in the FP8 checkpoint: 91,991 tensors in all.
    assert_eq!(all.len() + quantized, 91_991);
    assert_eq!(quantized, 62 * 5 + 3 * 3 + 59 * (256 * 3 + 3));

    let main = expected_tensors(&c, false);
    let main_params: u64 = main.iter().map(|t| numel(&t.shape)).sum();
    assert_eq!(main_params, 671_026_419_200);
    let all_params: u64 = all.iter().map(|t| numel(&t.shape)).sum();
    let copies = 2 * 129_280u64 * 7168; // MTP embed_tokens and shared_head.head
    assert_eq!(all_params - main_params - copies, 11_610_068_224);

    // Scale values: 41,540,496 (spec §1.3).
    let scales: u64 = all
        .iter()
        .filter(|t| t.role == TensorRole::Weight { quantizable: true })
        .map(|t| (t.shape[0].div_ceil(128) * t.shape[1].div_ceil(128)) as u64)
        .sum();
    assert_eq!(scales, 41_540_496);

    let by_name: HashMap<&str, &Vec<usize>> =
        all.iter().map(|t| (t.name.as_str(), &t.shape)).collect();
    let shape = |n: &str| {
        by_name
            .get(n)
            .map(|s| s.as_slice())
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(shape("model.embed_tokens.weight"), [129_280, 7168]);
    assert_eq!(shape("lm_head.weight"), [129_280, 7168]);
    assert_eq!(
        shape("model.layers.0.self_attn.q_a_proj.weight"),
        [1536, 7168]
    );
    assert_eq!(
        shape("model.layers.0.self_attn.q_b_proj.weight"),
        [24_576, 1536]
    );
    assert_eq!(
        shape("model.layers.0.self_attn.kv_a_proj_with_mqa.weight"),
        [576, 7168]
    );
    assert_eq!(
        shape("model.layers.0.self_attn.kv_b_proj.weight"),
        [32_768, 512]
    );
    assert_eq!(
        shape("model.layers.0.self_attn.o_proj.weight"),
        [7168, 16_384]
    );
    assert_eq!(shape("model.layers.2.mlp.gate_proj.weight"), [18_432, 7168]);
    assert_eq!(shape("model.layers.3.mlp.gate.weight"), [256, 7168]);
    assert_eq!(
        shape("model.layers.3.mlp.gate.e_score_correction_bias"),
        [256]
    );
    assert_eq!(
        shape("model.layers.60.mlp.experts.255.down_proj.weight"),
        [7168, 2048]
    );
    assert_eq!(
        shape("model.layers.60.mlp.shared_experts.up_proj.weight"),
        [2048, 7168]
    );
    assert_eq!(shape("model.layers.61.eh_proj.weight"), [7168, 14_336]);
    assert_eq!(
        shape("model.layers.61.shared_head.head.weight"),
        [129_280, 7168]
    );
    assert!(!by_name.contains_key("model.layers.3.mlp.gate_proj.weight"));
    assert!(!by_name.contains_key("model.layers.2.mlp.gate.weight"));
    assert!(!main.iter().any(|t| t.name.starts_with("model.layers.61.")));

    let role = |n: &str| all.iter().find(|t| t.name == n).unwrap().role;
    assert_eq!(
        role("model.layers.3.mlp.gate.weight"),
        TensorRole::Weight { quantizable: false }
    );
    assert_eq!(
        role("model.layers.61.eh_proj.weight"),
        TensorRole::Weight { quantizable: false }
    );
    assert_eq!(
        role("model.layers.3.mlp.gate.e_score_correction_bias"),
        TensorRole::Bias
    );
    assert_eq!(role("model.layers.61.enorm.weight"), TensorRole::Norm);
    assert_eq!(
        role("model.layers.61.embed_tokens.weight"),
        TensorRole::Embedding
    );
    assert_eq!(role("lm_head.weight"), TensorRole::Head);

    assert_eq!(layer_index("model.layers.61.enorm.weight"), Some(61));
    assert_eq!(layer_index("model.norm.weight"), None);
    assert!(is_mtp_tensor(
        &c,
        "model.layers.61.mlp.experts.0.up_proj.weight"
    ));
    assert!(!is_mtp_tensor(
        &c,
        "model.layers.60.mlp.experts.0.up_proj.weight"
    ));
}

#[test]
fn v2_lite_inventory() {
    let c = ModelConfig::from_json_str(V2_LITE_CONFIG).unwrap();
    let all = expected_tensors(&c, true);
    let names: HashMap<&str, &Vec<usize>> =
        all.iter().map(|t| (t.name.as_str(), &t.shape)).collect();
    assert_eq!(
        names["model.layers.0.self_attn.q_proj.weight"].as_slice(),
        [3072, 2048]
    );
    assert!(!names.contains_key("model.layers.0.self_attn.q_a_proj.weight"));
    assert!(!names.contains_key("model.layers.0.self_attn.q_a_layernorm.weight"));
    assert_eq!(
        names["model.layers.0.mlp.down_proj.weight"].as_slice(),
        [2048, 10944]
    );
    assert_eq!(
        names["model.layers.1.mlp.shared_experts.gate_proj.weight"].as_slice(),
        [2816, 2048]
    );
    assert_eq!(
        names["model.layers.26.mlp.experts.63.up_proj.weight"].as_slice(),
        [1408, 2048]
    );
    assert!(!names.contains_key("model.layers.1.mlp.gate.e_score_correction_bias"));
    assert!(
        !all.iter().any(|t| t.name.starts_with("model.layers.27.")),
        "no MTP layers"
    );
    // 15.7B parameters (DeepSeek-V2-Lite: "16B total").
    let params: u64 = all.iter().map(|t| numel(&t.shape)).sum();
    assert_eq!(params, 15_706_484_224);
}

#[test]
fn tied_embeddings_drop_lm_head_and_biases_appear() {
    let mut v: serde_json::Value = serde_json::from_str(V2_LITE_CONFIG).unwrap();
    v["tie_word_embeddings"] = true.into();
    v["attention_bias"] = true.into();
    v["n_shared_experts"] = serde_json::Value::Null;
    let c = ModelConfig::from_json_str(&v.to_string()).unwrap();
    let all = expected_tensors(&c, false);
    assert!(!all.iter().any(|t| t.name == "lm_head.weight"));
    assert!(!all.iter().any(|t| t.name.contains("shared_experts")));
    let bias: Vec<&str> = all
        .iter()
        .filter(|t| t.name.starts_with("model.layers.0.") && t.role == TensorRole::Bias)
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        bias,
        [
            "model.layers.0.self_attn.kv_a_proj_with_mqa.bias",
            "model.layers.0.self_attn.o_proj.bias"
        ]
    );
}
