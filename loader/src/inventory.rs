//! The tensors a config implies (spec §1.2, §7.1) and checkpoint validation against them.

use std::collections::HashSet;

use concord_core::{DType, Error, Result};

use crate::checkpoint::Checkpoint;
use crate::config::ModelConfig;
use crate::coverage::check_checkpoint_extent;

/// What a tensor is, which decides the dtypes it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorRole {
    /// A linear-layer weight `[out, in]`; `quantizable` ones may be block-FP8 with a scale.
    Weight {
        /// True for every projection inside a decoder layer (attention, dense MLP, experts).
        quantizable: bool,
    },
    /// An RMSNorm weight vector.
    Norm,
    /// A bias vector (router `e_score_correction_bias`, optional projection biases).
    Bias,
    /// A token embedding table `[V, H]`.
    Embedding,
    /// An output head `[V, H]`.
    Head,
}

/// One tensor the config requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedTensor {
    /// Full tensor name.
    pub name: String,
    /// Required shape.
    pub shape: Vec<usize>,
    /// Role (decides allowed dtypes).
    pub role: TensorRole,
}

/// Collects the expected tensors.
struct Inv<'a> {
    cfg: &'a ModelConfig,
    out: Vec<ExpectedTensor>,
}

impl Inv<'_> {
    fn push(&mut self, name: String, shape: Vec<usize>, role: TensorRole) {
        self.out.push(ExpectedTensor { name, shape, role });
    }

    /// `prefix.weight` of a projection `[out, inp]`, plus `prefix.bias` when `bias`.
    fn linear(&mut self, prefix: &str, out: usize, inp: usize, quantizable: bool, bias: bool) {
        self.push(
            format!("{prefix}.weight"),
            vec![out, inp],
            TensorRole::Weight { quantizable },
        );
        if bias {
            self.push(format!("{prefix}.bias"), vec![out], TensorRole::Bias);
        }
    }

    fn norm(&mut self, name: String, dim: usize) {
        self.push(name, vec![dim], TensorRole::Norm);
    }

    fn mlp(&mut self, prefix: &str, inter: usize) {
        let (h, b) = (self.cfg.hidden_size, self.cfg.mlp_bias);
        self.linear(&format!("{prefix}.gate_proj"), inter, h, true, b);
        self.linear(&format!("{prefix}.up_proj"), inter, h, true, b);
        self.linear(&format!("{prefix}.down_proj"), h, inter, true, b);
    }

    fn decoder_layer(&mut self, l: usize) {
        let c = self.cfg;
        let p = format!("model.layers.{l}");
        let (h, n, ab) = (c.hidden_size, c.num_attention_heads, c.attention_bias);
        self.norm(format!("{p}.input_layernorm.weight"), h);
        self.norm(format!("{p}.post_attention_layernorm.weight"), h);
        let a = format!("{p}.self_attn");
        match c.q_lora_rank {
            Some(rq) => {
                self.linear(&format!("{a}.q_a_proj"), rq, h, true, ab);
                self.norm(format!("{a}.q_a_layernorm.weight"), rq);
                self.linear(
                    &format!("{a}.q_b_proj"),
                    n * c.qk_head_dim(),
                    rq,
                    true,
                    false,
                );
            }
            None => self.linear(&format!("{a}.q_proj"), n * c.qk_head_dim(), h, true, false),
        }
        self.linear(
            &format!("{a}.kv_a_proj_with_mqa"),
            c.kv_lora_rank + c.qk_rope_head_dim,
            h,
            true,
            ab,
        );
        self.norm(format!("{a}.kv_a_layernorm.weight"), c.kv_lora_rank);
        self.linear(
            &format!("{a}.kv_b_proj"),
            n * (c.qk_nope_head_dim + c.v_head_dim),
            c.kv_lora_rank,
            true,
            false,
        );
        self.linear(&format!("{a}.o_proj"), h, n * c.v_head_dim, true, ab);

        let m = format!("{p}.mlp");
        if c.is_moe_layer(l) {
            let e = c.n_routed_experts;
            self.linear(&format!("{m}.gate"), e, h, false, false);
            if c.has_router_bias() {
                self.push(
                    format!("{m}.gate.e_score_correction_bias"),
                    vec![e],
                    TensorRole::Bias,
                );
            }
            for x in 0..e {
                self.mlp(&format!("{m}.experts.{x}"), c.moe_intermediate_size);
            }
            if c.n_shared_experts > 0 {
                self.mlp(
                    &format!("{m}.shared_experts"),
                    c.moe_intermediate_size * c.n_shared_experts,
                );
            }
        } else {
            self.mlp(&m, c.intermediate_size);
        }
    }

    /// The MTP-only tensors of layer `l` (spec §7.1).
    fn mtp_extras(&mut self, l: usize) {
        let c = self.cfg;
        let p = format!("model.layers.{l}");
        let (v, h) = (c.vocab_size, c.hidden_size);
        self.push(
            format!("{p}.embed_tokens.weight"),
            vec![v, h],
            TensorRole::Embedding,
        );
        self.norm(format!("{p}.enorm.weight"), h);
        self.norm(format!("{p}.hnorm.weight"), h);
        self.linear(&format!("{p}.eh_proj"), h, 2 * h, false, false);
        self.norm(format!("{p}.shared_head.norm.weight"), h);
        self.push(
            format!("{p}.shared_head.head.weight"),
            vec![v, h],
            TensorRole::Head,
        );
    }
}

/// Every tensor the config requires (scales excluded): embedding, final norm, `lm_head` unless
/// tied, and each decoder layer (q LoRA or direct `q_proj`, dense or MoE MLP, shared experts if
/// any, router bias iff `noaux_tc`); with `include_mtp`, also the MTP layers
/// `num_hidden_layers .. num_hidden_layers + num_nextn_predict_layers`.
pub fn expected_tensors(cfg: &ModelConfig, include_mtp: bool) -> Vec<ExpectedTensor> {
    let mut inv = Inv {
        cfg,
        out: Vec::new(),
    };
    let (v, h) = (cfg.vocab_size, cfg.hidden_size);
    inv.push(
        "model.embed_tokens.weight".into(),
        vec![v, h],
        TensorRole::Embedding,
    );
    for l in 0..cfg.num_hidden_layers {
        inv.decoder_layer(l);
    }
    inv.norm("model.norm.weight".into(), h);
    if !cfg.tie_word_embeddings {
        inv.push("lm_head.weight".into(), vec![v, h], TensorRole::Head);
    }
    if include_mtp {
        for l in cfg.num_hidden_layers..cfg.num_hidden_layers + cfg.num_nextn_predict_layers {
            inv.mtp_extras(l);
            inv.decoder_layer(l);
        }
    }
    inv.out
}

/// The layer index of a `model.layers.{l}.…` tensor name.
pub fn layer_index(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("model.layers.")?;
    rest[..rest.find('.')?].parse().ok()
}

/// True for tensors of the MTP layers (`num_hidden_layers ≤ l < num_hidden_layers +
/// num_nextn_predict_layers`).
pub fn is_mtp_tensor(cfg: &ModelConfig, name: &str) -> bool {
    layer_index(name).is_some_and(|l| {
        l >= cfg.num_hidden_layers && l < cfg.num_hidden_layers + cfg.num_nextn_predict_layers
    })
}

/// How many problems [`validate_checkpoint`] lists in its error.
const MAX_LISTED: usize = 20;

fn fmt_shape(s: &[usize]) -> String {
    format!("{s:?}")
}

/// Checks that `ckpt` holds every tensor [`expected_tensors`] lists, with the right shape and a
/// supported dtype (F32/BF16/F16, or F8_E4M3 for quantizable weights, which then need an F32
/// `<name>_scale_inv` of shape `[ceil(out/bo), ceil(in/bi)]`, block from `quantization_config`,
/// default 128×128). Layers or experts the config does not describe are errors
/// ([`crate::check_checkpoint_extent`]); other extra tensors are allowed (MTP layers are skipped unless `include_mtp`,
/// `rotary_emb.inv_freq` is ignored). Every problem is counted; the first 20 are listed.
pub fn validate_checkpoint(cfg: &ModelConfig, ckpt: &Checkpoint, include_mtp: bool) -> Result<()> {
    check_checkpoint_extent(cfg, ckpt)?;
    let expected = expected_tensors(cfg, include_mtp);
    let [bo, bi] = cfg.weight_block_size();
    let mut problems: Vec<String> = Vec::new();
    let mut total = 0usize;
    let mut report = |msg: String| {
        total += 1;
        if problems.len() < MAX_LISTED {
            problems.push(msg);
        }
    };
    let file = |name: &str| {
        ckpt.file_of(name)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };

    for t in &expected {
        let name = t.name.as_str();
        let (Some(shape), Some(dtype)) = (ckpt.shape(name), ckpt.dtype_name(name)) else {
            report(format!(
                "missing tensor `{name}` (expected shape {})",
                fmt_shape(&t.shape)
            ));
            continue;
        };
        if shape != t.shape.as_slice() {
            report(format!(
                "tensor `{name}` in {}: expected shape {}, found {}",
                file(name),
                fmt_shape(&t.shape),
                fmt_shape(shape)
            ));
        }
        let quantizable = t.role == TensorRole::Weight { quantizable: true };
        match DType::from_safetensors_name(dtype) {
            Some(DType::F32 | DType::BF16 | DType::F16) => {}
            Some(DType::F8E4M3) if quantizable => {
                let scale = format!("{name}_scale_inv");
                let want = [t.shape[0].div_ceil(bo), t.shape[1].div_ceil(bi)];
                match (ckpt.shape(&scale), ckpt.dtype_name(&scale)) {
                    (Some(ss), Some(sd)) => {
                        if sd != "F32" || ss != want {
                            report(format!(
                                "scale `{scale}` in {}: expected F32 {} (block {bo}x{bi} of {}), found {sd} {}",
                                file(&scale),
                                fmt_shape(&want),
                                fmt_shape(&t.shape),
                                fmt_shape(ss)
                            ));
                        }
                    }
                    _ => report(format!(
                        "tensor `{name}` in {} is F8_E4M3 but its scale `{scale}` (F32 {}) is missing",
                        file(name),
                        fmt_shape(&want)
                    )),
                }
            }
            _ => {
                let allowed = if quantizable {
                    "F32, BF16, F16 or F8_E4M3"
                } else {
                    "F32, BF16 or F16"
                };
                report(format!(
                    "tensor `{name}` in {}: expected dtype {allowed} for a {}, found {dtype}",
                    file(name),
                    role_name(t.role)
                ));
            }
        }
    }

    // Extras: allowed (the loader never reads them), but listed once so a mismatched
    // checkpoint does not go unnoticed.
    let known: HashSet<&str> = expected.iter().map(|t| t.name.as_str()).collect();
    let mut unknown: Vec<&str> = Vec::new();
    for name in ckpt.names() {
        if known.contains(name)
            || name.ends_with("rotary_emb.inv_freq")
            || name
                .strip_suffix("_scale_inv")
                .is_some_and(|w| known.contains(w))
            || (!include_mtp && is_mtp_tensor(cfg, name))
        {
            continue;
        }
        unknown.push(name);
    }
    if !unknown.is_empty() {
        tracing::warn!(
            checkpoint = %ckpt.dir().display(),
            count = unknown.len(),
            first = ?&unknown[..unknown.len().min(5)],
            "checkpoint holds tensors the config does not use; they are ignored"
        );
    }

    if total == 0 {
        return Ok(());
    }
    let more = if total > problems.len() {
        format!("\n  … and {} more", total - problems.len())
    } else {
        String::new()
    };
    Err(Error::model(format!(
        "checkpoint {} does not match its config: {total} problem(s):\n  - {}{more}",
        ckpt.dir().display(),
        problems.join("\n  - ")
    )))
}

fn role_name(r: TensorRole) -> &'static str {
    match r {
        TensorRole::Weight { quantizable: true } => "quantizable weight",
        TensorRole::Weight { quantizable: false } => "non-quantized weight",
        TensorRole::Norm => "norm weight",
        TensorRole::Bias => "bias",
        TensorRole::Embedding => "embedding",
        TensorRole::Head => "output head",
    }
}
