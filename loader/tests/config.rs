//! config.json parsing and the HF-exact RoPE / softmax-scale helpers.

#[path = "data/configs.rs"]
mod configs;
#[path = "data/rope_reference.rs"]
mod rope_reference;

use configs::{V2_LITE_CONFIG, V3_CONFIG};

use concord_core::ActScaleFormat;
use concord_loader::{Architecture, ModelConfig, RopeScalingKind, ScoringFunc, TopkMethod};

fn v3() -> ModelConfig {
    ModelConfig::from_json_str(V3_CONFIG).unwrap()
}

/// Replaces one top-level key of a JSON text (or removes it with `None`).
fn with(base: &str, key: &str, value: Option<serde_json::Value>) -> String {
    let mut v: serde_json::Value = serde_json::from_str(base).unwrap();
    let m = v.as_object_mut().unwrap();
    match value {
        Some(x) => {
            m.insert(key.to_string(), x);
        }
        None => {
            m.remove(key);
        }
    }
    v.to_string()
}

#[test]
fn v3_fields() {
    let c = v3();
    assert_eq!(c.architecture, Architecture::DeepseekV3);
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.intermediate_size,
            c.moe_intermediate_size
        ),
        (129280, 7168, 18432, 2048)
    );
    assert_eq!(
        (
            c.num_hidden_layers,
            c.num_attention_heads,
            c.num_key_value_heads
        ),
        (61, 128, Some(128))
    );
    assert_eq!(
        (
            c.n_shared_experts,
            c.n_routed_experts,
            c.num_experts_per_tok
        ),
        (1, 256, 8)
    );
    assert_eq!(c.routed_scaling_factor, 2.5);
    assert_eq!((c.n_group, c.topk_group), (8, 4));
    assert_eq!(c.topk_method, TopkMethod::NoauxTc);
    assert_eq!(c.scoring_func, ScoringFunc::Sigmoid);
    assert!(c.norm_topk_prob);
    assert_eq!((c.first_k_dense_replace, c.moe_layer_freq), (3, 1));
    assert_eq!(c.q_lora_rank, Some(1536));
    assert_eq!(
        (
            c.kv_lora_rank,
            c.qk_nope_head_dim,
            c.qk_rope_head_dim,
            c.v_head_dim
        ),
        (512, 128, 64, 128)
    );
    assert_eq!(c.qk_head_dim(), 192);
    assert_eq!(c.rms_norm_eps, 1e-6f32);
    assert_eq!(c.rope_theta, 10000.0);
    let rs = c.rope_scaling.as_ref().unwrap();
    assert_eq!(rs.kind, RopeScalingKind::Yarn);
    assert_eq!(
        (rs.factor, rs.original_max_position_embeddings),
        (40.0, 4096)
    );
    assert_eq!(
        (rs.beta_fast, rs.beta_slow, rs.mscale, rs.mscale_all_dim),
        (32.0, 1.0, 1.0, 1.0)
    );
    assert!(rs.truncate && rs.attention_factor.is_none());
    assert_eq!(c.max_position_embeddings, 163840);
    assert!(!c.tie_word_embeddings);
    assert_eq!(
        (c.bos_token_id, c.eos_token_ids.as_slice()),
        (Some(0), &[1u32][..])
    );
    assert_eq!(c.num_nextn_predict_layers, 1);
    let q = c.quantization.as_ref().unwrap();
    assert_eq!(
        (
            q.quant_method.as_str(),
            q.fmt.as_str(),
            q.activation_scheme.as_str()
        ),
        ("fp8", "e4m3", "dynamic")
    );
    assert_eq!(q.weight_block_size, [128, 128]);
    assert_eq!(q.scale_fmt, ActScaleFormat::F32);
    assert_eq!(c.act_scale_format(), ActScaleFormat::F32);
    assert_eq!(c.weight_block_size(), [128, 128]);
    assert_eq!(c.torch_dtype.as_deref(), Some("bfloat16"));
    assert!(c.rope_interleave);
    assert_eq!(c.hidden_act, "silu");
    assert!(!c.attention_bias && !c.mlp_bias);
    assert_eq!(c.raw["transformers_version"], "4.33.1");
    c.validate().unwrap();
}

#[test]
fn v3_moe_layers() {
    let c = v3();
    assert!(!c.is_moe_layer(0) && !c.is_moe_layer(1) && !c.is_moe_layer(2));
    assert!((3..=61).all(|l| c.is_moe_layer(l)));
    assert!(c.has_router_bias());
}

#[test]
fn v3_softmax_scale_and_yarn_anchors() {
    let c = v3();
    // Spec §3.4: 0.1352337789; HF computes 0.1352337788608801 in f64.
    assert_eq!(c.softmax_scale(), 0.135_233_778_860_880_1_f64 as f32);
    assert!((c.softmax_scale() as f64 - 0.135_233_778_9).abs() < 1e-8);
    assert_eq!(c.rope_attention_factor(), 1.0);
    assert_eq!(c.yarn_correction_range(), Some((10.0, 23.0)));
    let f = c.rope_inv_freq();
    assert_eq!(f.len(), 32);
    assert_eq!(f[0], 1.0);
    let close = |a: f32, b: f64, rel: f64| ((a as f64 - b) / b).abs() < rel;
    assert!(close(f[10], 0.056_234_1, 1e-6), "{}", f[10]);
    assert!(close(f[11], 0.039_006_9, 1e-6), "{}", f[11]);
    // 0.0055 exactly in real arithmetic; HF's f32 pipeline gives the next float up (0x3bb43959).
    assert!(close(f[16], 0.0055, 1e-7), "{}", f[16]);
    assert_eq!(f[16].to_bits(), 0x3bb4_3959);
    assert!(close(f[22], 1.778_279e-4, 1e-6), "{}", f[22]);
    assert!(close(f[23], 3.333_804e-5, 1e-6), "{}", f[23]);
    assert!(close(f[31], 3.333_804e-6, 1e-6), "{}", f[31]);
    // Pairs 0..=10 keep the base frequency, 23.. are divided by 40.
    for (i, &x) in f.iter().enumerate().take(11) {
        let base = 1.0f32 / (10000f64.powf((2 * i) as f64 / 64.0) as f32);
        assert_eq!(x, base, "pair {i}");
    }
}

#[test]
fn hf_reference_cases_bit_exact() {
    for &(name, json, inv_bits, af_bits, scale_bits) in rope_reference::CASES {
        let c = ModelConfig::from_json_str(json).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<u32> = c.rope_inv_freq().iter().map(|x| x.to_bits()).collect();
        assert_eq!(got.len(), inv_bits.len(), "{name}: length");
        for (i, (&g, &w)) in got.iter().zip(inv_bits).enumerate() {
            assert_eq!(
                g,
                w,
                "{name}: inv_freq[{i}] = {} ({g:#010x}), HF {} ({w:#010x})",
                f32::from_bits(g),
                f32::from_bits(w)
            );
        }
        assert_eq!(
            c.rope_attention_factor().to_bits(),
            af_bits,
            "{name}: attention factor"
        );
        assert_eq!(
            c.softmax_scale().to_bits(),
            scale_bits,
            "{name}: softmax scale {}",
            c.softmax_scale()
        );
    }
}

#[test]
fn v2_lite_fields() {
    let c = ModelConfig::from_json_str(V2_LITE_CONFIG).unwrap();
    assert_eq!(c.architecture, Architecture::DeepseekV2);
    assert_eq!(
        (c.hidden_size, c.num_hidden_layers, c.num_attention_heads),
        (2048, 27, 16)
    );
    assert_eq!(c.q_lora_rank, None);
    assert_eq!(
        (
            c.n_routed_experts,
            c.n_shared_experts,
            c.num_experts_per_tok
        ),
        (64, 2, 6)
    );
    assert_eq!(
        (
            c.moe_intermediate_size,
            c.intermediate_size,
            c.first_k_dense_replace
        ),
        (1408, 10944, 1)
    );
    assert_eq!((c.n_group, c.topk_group), (1, 1));
    assert_eq!(
        (c.topk_method, c.scoring_func),
        (TopkMethod::Greedy, ScoringFunc::Softmax)
    );
    assert!(!c.norm_topk_prob);
    assert_eq!(c.routed_scaling_factor, 1.0);
    assert!(!c.has_router_bias());
    assert_eq!(
        (c.bos_token_id, c.eos_token_ids.clone()),
        (Some(100000), vec![100001])
    );
    assert_eq!(c.vocab_size, 102400);
    assert!(c.quantization.is_none());
    assert_eq!(c.num_nextn_predict_layers, 0, "V2 has no MTP by default");
    let rs = c.rope_scaling.as_ref().unwrap();
    assert_eq!((rs.mscale, rs.mscale_all_dim), (0.707, 0.707));
    assert_eq!(c.rope_attention_factor(), 1.0);
    // m = 0.1·0.707·ln 40 + 1; scale = 192^-0.5 · m².
    let m = 0.1 * 0.707 * 40f64.ln() + 1.0;
    assert_eq!(c.softmax_scale(), (192f64.powf(-0.5) * m * m) as f32);
    assert!(!c.is_moe_layer(0) && c.is_moe_layer(1) && c.is_moe_layer(26));
    c.validate().unwrap();
}

#[test]
fn rope_type_key_and_rope_parameters_form() {
    // transformers 5.x re-saved form: `rope_parameters` with `rope_type` and `rope_theta` inside,
    // `dtype` instead of `torch_dtype`, extra head_dim/qk_head_dim keys, `num_mtp_layers`.
    let mut v: serde_json::Value = serde_json::from_str(V3_CONFIG).unwrap();
    let m = v.as_object_mut().unwrap();
    let mut rp = m.remove("rope_scaling").unwrap();
    rp.as_object_mut().unwrap().remove("type");
    rp["rope_type"] = "yarn".into();
    rp["rope_theta"] = 10000.0.into();
    m.remove("rope_theta");
    m.insert("rope_parameters".into(), rp);
    m.remove("torch_dtype");
    m.insert("dtype".into(), "bfloat16".into());
    m.insert("head_dim".into(), 64.into());
    m.insert("qk_head_dim".into(), 192.into());
    m.insert("rope_interleave".into(), true.into());
    m.remove("num_nextn_predict_layers");
    m.insert("num_mtp_layers".into(), 1.into());
    let c = ModelConfig::from_json_str(&v.to_string()).unwrap();
    let base = v3();
    assert_eq!(c.rope_scaling, base.rope_scaling);
    assert_eq!(c.rope_theta, 10000.0);
    assert_eq!(c.torch_dtype.as_deref(), Some("bfloat16"));
    assert_eq!(c.num_nextn_predict_layers, 1);
    assert_eq!(c.rope_inv_freq(), base.rope_inv_freq());
    assert_eq!(c.softmax_scale(), base.softmax_scale());

    // `rope_type` inside legacy `rope_scaling` works too, and wins over `type`.
    let mut v: serde_json::Value = serde_json::from_str(V3_CONFIG).unwrap();
    v["rope_scaling"]["rope_type"] = "yarn".into();
    v["rope_scaling"]["type"] = "linear".into();
    let c = ModelConfig::from_json_str(&v.to_string()).unwrap();
    assert_eq!(c.rope_scaling.unwrap().kind, RopeScalingKind::Yarn);
}

#[test]
fn integers_written_as_floats() {
    let mut v: serde_json::Value = serde_json::from_str(V3_CONFIG).unwrap();
    v["hidden_size"] = 7168.0.into();
    v["rope_scaling"]["factor"] = 40.0.into();
    v["rope_scaling"]["original_max_position_embeddings"] = 4096.0.into();
    v["quantization_config"]["weight_block_size"] = serde_json::json!([128.0, 128.0]);
    v["eos_token_id"] = 1.0.into();
    let c = ModelConfig::from_json_str(&v.to_string()).unwrap();
    assert_eq!(c.hidden_size, 7168);
    assert_eq!(
        c.rope_scaling
            .as_ref()
            .unwrap()
            .original_max_position_embeddings,
        4096
    );
    assert_eq!(c.weight_block_size(), [128, 128]);
    assert_eq!(c.eos_token_ids, vec![1]);
    assert_eq!(c.rope_inv_freq(), v3().rope_inv_freq());
}

#[test]
fn eos_list_and_nulls() {
    let c = ModelConfig::from_json_str(&with(
        V3_CONFIG,
        "eos_token_id",
        Some(serde_json::json!([1, 128805])),
    ))
    .unwrap();
    assert_eq!(c.eos_token_ids, vec![1, 128805]);
    let c = ModelConfig::from_json_str(&with(
        V3_CONFIG,
        "eos_token_id",
        Some(serde_json::Value::Null),
    ))
    .unwrap();
    assert!(c.eos_token_ids.is_empty());
    let c = ModelConfig::from_json_str(&with(
        V3_CONFIG,
        "bos_token_id",
        Some(serde_json::Value::Null),
    ))
    .unwrap();
    assert_eq!(c.bos_token_id, None);
    let c = ModelConfig::from_json_str(&with(
        V3_CONFIG,
        "q_lora_rank",
        Some(serde_json::Value::Null),
    ))
    .unwrap();
    assert_eq!(c.q_lora_rank, None);
    let c = ModelConfig::from_json_str(&with(
        V3_CONFIG,
        "rope_scaling",
        Some(serde_json::Value::Null),
    ))
    .unwrap();
    assert!(c.rope_scaling.is_none());
    assert_eq!(c.softmax_scale(), 192f64.powf(-0.5) as f32);
    assert_eq!(c.rope_attention_factor(), 1.0);
    assert_eq!(c.rope_inv_freq()[16], 1.0 / (10000f64.powf(0.5) as f32));
}

#[test]
fn dense_only_when_routed_experts_null() {
    let text = with(V3_CONFIG, "n_routed_experts", Some(serde_json::Value::Null));
    let c = ModelConfig::from_json_str(&text).unwrap();
    assert_eq!(c.n_routed_experts, 0);
    assert!((0..61).all(|l| !c.is_moe_layer(l)));
    c.validate().unwrap();
    let c = ModelConfig::from_json_str(&with(
        V3_CONFIG,
        "n_shared_experts",
        Some(serde_json::Value::Null),
    ))
    .unwrap();
    assert_eq!(c.n_shared_experts, 0);
}

#[test]
fn moe_layer_freq_is_honoured() {
    let c = ModelConfig::from_json_str(&with(V3_CONFIG, "moe_layer_freq", Some(2.into()))).unwrap();
    assert!(!c.is_moe_layer(3) && c.is_moe_layer(4) && !c.is_moe_layer(5) && c.is_moe_layer(6));
}

#[test]
fn defaults_follow_hf_classes() {
    let c = ModelConfig::from_json_str(r#"{"model_type": "deepseek_v3"}"#).unwrap();
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.num_hidden_layers,
            c.n_routed_experts
        ),
        (129280, 7168, 61, 256)
    );
    assert_eq!(
        (c.topk_method, c.scoring_func, c.n_group, c.topk_group),
        (TopkMethod::NoauxTc, ScoringFunc::Sigmoid, 8, 4)
    );
    assert_eq!(
        (
            c.max_position_embeddings,
            c.bos_token_id,
            c.eos_token_ids.clone()
        ),
        (4096, Some(0), vec![1])
    );
    assert_eq!(
        (
            c.q_lora_rank,
            c.num_key_value_heads,
            c.num_nextn_predict_layers
        ),
        (Some(1536), None, 1)
    );
    assert!(c.rope_scaling.is_none() && c.quantization.is_none() && c.rope_interleave);
    c.validate().unwrap();

    let c = ModelConfig::from_json_str(r#"{"architectures": ["DeepseekV2ForCausalLM"]}"#).unwrap();
    assert_eq!(c.architecture, Architecture::DeepseekV2);
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.intermediate_size,
            c.num_hidden_layers
        ),
        (102400, 4096, 11008, 32)
    );
    assert_eq!(
        (
            c.n_routed_experts,
            c.n_shared_experts,
            c.moe_intermediate_size
        ),
        (64, 2, 1407)
    );
    assert_eq!(
        (c.topk_method, c.scoring_func, c.n_group, c.topk_group),
        (TopkMethod::Greedy, ScoringFunc::Softmax, 1, 1)
    );
    assert_eq!(
        (
            c.first_k_dense_replace,
            c.num_experts_per_tok,
            c.routed_scaling_factor
        ),
        (0, 0, 1.0)
    );
    assert_eq!(
        (
            c.bos_token_id,
            c.eos_token_ids.clone(),
            c.max_position_embeddings
        ),
        (Some(1), vec![2], 2048)
    );
    // HF's V2 default leaves num_experts_per_tok unset: validate says so.
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("num_experts_per_tok"), "{e}");
}

#[test]
fn yarn_factor_defaults_to_context_ratio() {
    let text = r#"{"model_type":"deepseek_v3","max_position_embeddings":32768,
        "rope_scaling":{"type":"yarn","original_max_position_embeddings":4096,"mscale":1.0,"mscale_all_dim":1.0}}"#;
    let c = ModelConfig::from_json_str(text).unwrap();
    assert_eq!(c.rope_scaling.as_ref().unwrap().factor, 8.0);
    // Same as the explicit-factor reference case.
    let explicit = rope_reference::CASES
        .iter()
        .find(|c| c.0 == "yarn_rope_type_key")
        .unwrap();
    let got: Vec<u32> = c.rope_inv_freq().iter().map(|x| x.to_bits()).collect();
    assert_eq!(got, explicit.2);
}

#[test]
fn errors_name_the_field_and_file() {
    let e = ModelConfig::from_json_str(&with(V3_CONFIG, "hidden_size", Some("big".into())))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("config.json") && e.contains("hidden_size") && e.contains("\"big\""),
        "{e}"
    );
    let e = ModelConfig::from_json_str(&with(V3_CONFIG, "topk_method", Some("random".into())))
        .unwrap_err()
        .to_string();
    assert!(e.contains("topk_method") && e.contains("random"), "{e}");
    let mut v: serde_json::Value = serde_json::from_str(V3_CONFIG).unwrap();
    v["rope_scaling"]["beta_fast"] = "fast".into();
    let e = ModelConfig::from_json_str(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(e.contains("rope_scaling.beta_fast"), "{e}");
    let e = ModelConfig::from_json_str(r#"{"model_type": "llama"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("llama") && e.contains("model_type"), "{e}");
    let e = ModelConfig::from_json_str("{ not json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid JSON"), "{e}");

    let dir = std::env::temp_dir().join(format!("concord-loader-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        with(V3_CONFIG, "num_hidden_layers", Some((-3).into())),
    )
    .unwrap();
    let e = ModelConfig::from_file(&path).unwrap_err().to_string();
    assert!(
        e.contains(&path.display().to_string()) && e.contains("num_hidden_layers"),
        "{e}"
    );
    std::fs::write(&path, V3_CONFIG).unwrap();
    assert_eq!(ModelConfig::from_file(&path).unwrap(), v3());
    let e = ModelConfig::from_file(&dir.join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.json"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_reports_all_problems() {
    let mut v: serde_json::Value = serde_json::from_str(V3_CONFIG).unwrap();
    v["topk_group"] = 9.into();
    v["n_routed_experts"] = 250.into();
    v["num_attention_heads"] = 0.into();
    v["eos_token_id"] = 200000.into();
    let c = ModelConfig::from_json_str(&v.to_string()).unwrap();
    let e = c.validate().unwrap_err().to_string();
    for needle in [
        "topk_group = 9",
        "divisible by n_group",
        "num_attention_heads",
        "200000",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in {e}");
    }

    let c = ModelConfig::from_json_str(&with(V3_CONFIG, "num_experts_per_tok", Some(300.into())))
        .unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("num_experts_per_tok = 300"));
    let c = ModelConfig::from_json_str(&with(V3_CONFIG, "scoring_func", Some("softmax".into())))
        .unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("noaux_tc requires scoring_func sigmoid"));
    let c =
        ModelConfig::from_json_str(&with(V3_CONFIG, "qk_rope_head_dim", Some(63.into()))).unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("qk_rope_head_dim"));
    let c =
        ModelConfig::from_json_str(&with(V3_CONFIG, "hidden_act", Some("gelu".into()))).unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("gelu"));
    let c = ModelConfig::from_json_str(&with(V3_CONFIG, "topk_group", Some(1.into()))).unwrap();
    // 1 group of 32 experts still holds K = 8.
    c.validate().unwrap();
}

#[test]
fn quantization_variants() {
    let mut v: serde_json::Value = serde_json::from_str(V3_CONFIG).unwrap();
    v["quantization_config"] = serde_json::json!({"quant_method": "fp8", "scale_fmt": "ue8m0"});
    let c = ModelConfig::from_json_str(&v.to_string()).unwrap();
    let q = c.quantization.as_ref().unwrap();
    assert_eq!(
        (
            q.fmt.as_str(),
            q.activation_scheme.as_str(),
            q.weight_block_size
        ),
        ("e4m3", "dynamic", [128, 128])
    );
    assert_eq!(q.scale_fmt, ActScaleFormat::Ue8m0);
    assert_eq!(c.act_scale_format(), ActScaleFormat::Ue8m0);
    v["quantization_config"]["scale_fmt"] = serde_json::Value::Null;
    let c = ModelConfig::from_json_str(&v.to_string()).unwrap();
    assert_eq!(c.act_scale_format(), ActScaleFormat::F32);
    // An unknown format is refused at parse time, naming the field and the value.
    v["quantization_config"]["scale_fmt"] = "ue4m3".into();
    let e = ModelConfig::from_json_str(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("quantization_config.scale_fmt") && e.contains("\"ue4m3\""),
        "{e}"
    );
    v["quantization_config"]["scale_fmt"] = 8.into();
    let e = ModelConfig::from_json_str(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(e.contains("quantization_config.scale_fmt"), "{e}");
    v["quantization_config"] = serde_json::json!({"quant_method": "awq"});
    let c = ModelConfig::from_json_str(&v.to_string()).unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("awq"));
}

#[test]
fn generation_config() {
    let g = concord_loader::GenerationConfig::from_json_str(
        r#"{"_from_model_config": true, "bos_token_id": 0, "eos_token_id": [1, 2], "do_sample": true,
            "temperature": 0.6, "top_p": 0.95, "transformers_version": "4.46.3"}"#,
    )
    .unwrap();
    assert_eq!(
        (g.bos_token_id, g.eos_token_ids.clone(), g.do_sample),
        (Some(0), vec![1, 2], Some(true))
    );
    assert_eq!(
        (g.temperature, g.top_p, g.top_k),
        (Some(0.6), Some(0.95), None)
    );
    assert!(
        concord_loader::read_generation_config(std::path::Path::new("/nonexistent-dir")).is_none()
    );
    let dir = std::env::temp_dir().join(format!("concord-loader-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("generation_config.json"),
        r#"{"eos_token_id": 1, "top_k": 40}"#,
    )
    .unwrap();
    let g = concord_loader::read_generation_config(&dir).unwrap();
    assert_eq!((g.eos_token_ids, g.top_k), (vec![1], Some(40)));
    std::fs::write(dir.join("generation_config.json"), "[1, 2]").unwrap();
    assert!(concord_loader::read_generation_config(&dir).is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hf_plain_rope_sweep_bit_exact() {
    let mut mismatches = Vec::new();
    for &(d, theta, want) in rope_reference::SWEEP {
        let json = format!(
            r#"{{"model_type":"deepseek_v3","qk_rope_head_dim":{d},"rope_theta":{theta}}}"#
        );
        let c = ModelConfig::from_json_str(&json).unwrap();
        let got = c.rope_inv_freq();
        assert_eq!(got.len(), want.len());
        for (i, (g, &w)) in got.iter().zip(want).enumerate() {
            if g.to_bits() != w {
                mismatches.push(format!(
                    "d={d} theta={theta} [{i}]: {:#010x} vs HF {w:#010x}",
                    g.to_bits()
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
