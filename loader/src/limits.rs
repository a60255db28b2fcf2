//! Upper bounds on every `config.json` dimension (docs/limits.md).
//!
//! A config is untrusted input: a single huge field (`max_position_embeddings = 2^40`,
//! `n_routed_experts = 2^50`) used to size a table or drive a loop before anything else looked
//! at it aborted the process or hung it. `check_limits` runs first in
//! [`ModelConfig::validate`]; a field over its limit is reported with the field's name and the
//! limit, and nothing sized from the config is computed until every field is within bounds.
//! The limits are far above every released DeepSeek-V2/V3 checkpoint (V3: 61 layers, 256
//! experts, 163 840 positions) and small enough that the products the loader forms
//! (`heads × head_dim`, `layers × experts`, …) cannot overflow a 64-bit `usize`.

use crate::config::ModelConfig;

/// Longest context a config may advertise (`max_position_embeddings`,
/// `rope_scaling.original_max_position_embeddings`): 2^24 positions.
pub const MAX_POSITIONS: usize = 1 << 24;
/// Most decoder layers (`num_hidden_layers`).
pub const MAX_LAYERS: usize = 1024;
/// Most MTP modules after the main layers (`num_nextn_predict_layers` / `num_mtp_layers`).
pub const MAX_NEXTN_LAYERS: usize = 16;
/// Most routed experts per MoE layer (`n_routed_experts`, also bounds `n_group`).
pub const MAX_EXPERTS: usize = 1 << 16;
/// Most shared experts per MoE layer (`n_shared_experts`).
pub const MAX_SHARED_EXPERTS: usize = 1024;
/// Largest vocabulary (`vocab_size`): 2^24 token ids.
pub const MAX_VOCAB: usize = 1 << 24;
/// Largest model width (`hidden_size`).
pub const MAX_HIDDEN: usize = 1 << 16;
/// Largest MLP intermediate size (`intermediate_size`, `moe_intermediate_size`).
pub const MAX_INTERMEDIATE: usize = 1 << 20;
/// Most attention heads (`num_attention_heads`, `num_key_value_heads`).
pub const MAX_HEADS: usize = 4096;
/// Largest per-head dimension (`qk_nope_head_dim`, `qk_rope_head_dim`, `v_head_dim`).
pub const MAX_HEAD_DIM: usize = 4096;
/// Largest LoRA rank (`q_lora_rank`, `kv_lora_rank`).
pub const MAX_RANK: usize = 1 << 16;
/// Largest FP8 weight block side (`quantization_config.weight_block_size`).
pub const MAX_WEIGHT_BLOCK: usize = 1 << 16;

/// One bounded field: its name in `config.json`, its value, and its limit.
struct Bound<'a> {
    field: &'a str,
    value: usize,
    limit: usize,
}

/// Every field over its limit, as messages naming the field, the value and the limit.
/// Empty when the config is within bounds.
pub(crate) fn check_limits(cfg: &ModelConfig) -> Vec<String> {
    let mut bounds = vec![
        Bound {
            field: "vocab_size",
            value: cfg.vocab_size,
            limit: MAX_VOCAB,
        },
        Bound {
            field: "hidden_size",
            value: cfg.hidden_size,
            limit: MAX_HIDDEN,
        },
        Bound {
            field: "intermediate_size",
            value: cfg.intermediate_size,
            limit: MAX_INTERMEDIATE,
        },
        Bound {
            field: "moe_intermediate_size",
            value: cfg.moe_intermediate_size,
            limit: MAX_INTERMEDIATE,
        },
        Bound {
            field: "num_hidden_layers",
            value: cfg.num_hidden_layers,
            limit: MAX_LAYERS,
        },
        Bound {
            field: "num_nextn_predict_layers",
            value: cfg.num_nextn_predict_layers,
            limit: MAX_NEXTN_LAYERS,
        },
        Bound {
            field: "num_attention_heads",
            value: cfg.num_attention_heads,
            limit: MAX_HEADS,
        },
        Bound {
            field: "n_shared_experts",
            value: cfg.n_shared_experts,
            limit: MAX_SHARED_EXPERTS,
        },
        Bound {
            field: "n_routed_experts",
            value: cfg.n_routed_experts,
            limit: MAX_EXPERTS,
        },
        Bound {
            field: "num_experts_per_tok",
            value: cfg.num_experts_per_tok,
            limit: MAX_EXPERTS,
        },
        Bound {
            field: "n_group",
            value: cfg.n_group,
            limit: MAX_EXPERTS,
        },
        Bound {
            field: "topk_group",
            value: cfg.topk_group,
            limit: MAX_EXPERTS,
        },
        Bound {
            field: "kv_lora_rank",
            value: cfg.kv_lora_rank,
            limit: MAX_RANK,
        },
        Bound {
            field: "qk_nope_head_dim",
            value: cfg.qk_nope_head_dim,
            limit: MAX_HEAD_DIM,
        },
        Bound {
            field: "qk_rope_head_dim",
            value: cfg.qk_rope_head_dim,
            limit: MAX_HEAD_DIM,
        },
        Bound {
            field: "v_head_dim",
            value: cfg.v_head_dim,
            limit: MAX_HEAD_DIM,
        },
        Bound {
            field: "max_position_embeddings",
            value: cfg.max_position_embeddings,
            limit: MAX_POSITIONS,
        },
    ];
    if let Some(kv) = cfg.num_key_value_heads {
        bounds.push(Bound {
            field: "num_key_value_heads",
            value: kv,
            limit: MAX_HEADS,
        });
    }
    if let Some(rq) = cfg.q_lora_rank {
        bounds.push(Bound {
            field: "q_lora_rank",
            value: rq,
            limit: MAX_RANK,
        });
    }
    if let Some(rs) = &cfg.rope_scaling {
        bounds.push(Bound {
            field: "rope_scaling.original_max_position_embeddings",
            value: rs.original_max_position_embeddings,
            limit: MAX_POSITIONS,
        });
    }
    if let Some(q) = &cfg.quantization {
        for value in q.weight_block_size {
            bounds.push(Bound {
                field: "quantization_config.weight_block_size",
                value,
                limit: MAX_WEIGHT_BLOCK,
            });
        }
    }
    bounds
        .iter()
        .filter(|b| b.value > b.limit)
        .map(|b| {
            format!(
                "field `{}` = {} exceeds the limit {} (docs/limits.md)",
                b.field, b.value, b.limit
            )
        })
        .collect()
}
