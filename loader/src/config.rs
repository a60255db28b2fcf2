//! `config.json` of a Hugging Face DeepSeek-V3 / DeepSeek-V2 checkpoint.
//!
//! Parsing is tolerant (spec §0.2): integers may be written as floats (`40.0`), `rope_scaling`
//! may name its kind under `type` or `rope_type` (or come as the newer `rope_parameters`),
//! `eos_token_id` may be an integer or a list, and missing optional fields take the defaults of
//! the installed Hugging Face `DeepseekV3Config` / `DeepseekV2Config` (fields HF's classes no
//! longer declare — `topk_method`, `scoring_func`, `moe_layer_freq` — take the defaults of the
//! original Hub `configuration_deepseek.py`).
//!
//! The RoPE helpers ([`ModelConfig::rope_inv_freq`], [`ModelConfig::rope_attention_factor`],
//! [`ModelConfig::softmax_scale`]) reproduce transformers 5.x `_compute_yarn_parameters` and
//! `yarn_apply_mscale` operation by operation (f64 where HF uses Python floats, f32 where HF uses
//! float32 tensors).

use std::path::Path;

use concord_core::{ActScaleFormat, Error, Result};
use serde_json::Value;

use crate::json_fields::{Field, Obj};
use crate::limits::check_limits;
use crate::rope_config::parse_rope;
pub use crate::rope_config::{RopeScaling, RopeScalingKind};

/// Which model family the config describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// `DeepseekV3ForCausalLM` / `model_type: deepseek_v3` (also R1, V3.1, Kimi-K2 style configs).
    DeepseekV3,
    /// `DeepseekV2ForCausalLM` / `model_type: deepseek_v2` (V2, V2-Lite, V2.5).
    DeepseekV2,
}

/// Expert selection method of the MoE router (spec §5.2, §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopkMethod {
    /// `noaux_tc`: sigmoid scores plus `e_score_correction_bias` for selection, group score = sum
    /// of the top two experts of the group (V3).
    NoauxTc,
    /// `greedy`: plain top-K over the scores (V2-Lite).
    Greedy,
    /// `group_limited_greedy`: group score = max score of the group, keep `topk_group` groups (V2).
    GroupLimitedGreedy,
}

impl TopkMethod {
    /// The spelling used in `config.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            TopkMethod::NoauxTc => "noaux_tc",
            TopkMethod::Greedy => "greedy",
            TopkMethod::GroupLimitedGreedy => "group_limited_greedy",
        }
    }
}

/// Router score function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScoringFunc {
    /// Element-wise sigmoid of the logits (V3).
    Sigmoid,
    /// Softmax over all routed experts (V2).
    Softmax,
}

impl ScoringFunc {
    /// The spelling used in `config.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScoringFunc::Sigmoid => "sigmoid",
            ScoringFunc::Softmax => "softmax",
        }
    }
}

/// `quantization_config` block (DeepSeek block-scaled FP8, spec §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizationConfig {
    /// `quant_method`, `fp8` for V3.
    pub quant_method: String,
    /// `fmt`, `e4m3` for V3 (default `e4m3`).
    pub fmt: String,
    /// `activation_scheme`, `dynamic` for V3 (default `dynamic`).
    pub activation_scheme: String,
    /// `weight_block_size` `[rows, cols]` (default `[128, 128]`).
    pub weight_block_size: [usize; 2],
    /// `scale_fmt`: absent or null → plain f32 activation scales; `ue8m0` (V3.1) → activation
    /// scales rounded up to a power of two (docs/numerics.md §6).
    pub scale_fmt: ActScaleFormat,
}

/// Parsed `config.json` (spec §0.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Model family.
    pub architecture: Architecture,
    /// Embedding / output rows `V`.
    pub vocab_size: usize,
    /// Model width `H`.
    pub hidden_size: usize,
    /// Dense-MLP intermediate size `I`.
    pub intermediate_size: usize,
    /// Per-expert intermediate size `Im` (shared experts use `Im × n_shared_experts`).
    pub moe_intermediate_size: usize,
    /// Main decoder layers `L` (MTP layers are numbered from `L`).
    pub num_hidden_layers: usize,
    /// Attention heads `N`.
    pub num_attention_heads: usize,
    /// `num_key_value_heads` as written (irrelevant to MLA); `None` when absent or null.
    pub num_key_value_heads: Option<usize>,
    /// Shared experts per MoE layer `S` (0 if null).
    pub n_shared_experts: usize,
    /// Routed experts per MoE layer `E` (0 if null: dense-only model).
    pub n_routed_experts: usize,
    /// Experts selected per token `K` (0 if null).
    pub num_experts_per_tok: usize,
    /// Multiplier applied to the routing weights.
    pub routed_scaling_factor: f32,
    /// Expert groups `G` (null is read as 1: a single group).
    pub n_group: usize,
    /// Groups kept per token (null is read as 1).
    pub topk_group: usize,
    /// Router selection method.
    pub topk_method: TopkMethod,
    /// Router score function.
    pub scoring_func: ScoringFunc,
    /// Normalize the top-K weights to sum to 1 (before `routed_scaling_factor`).
    pub norm_topk_prob: bool,
    /// Layers `0..first_k_dense_replace` use the dense MLP.
    pub first_k_dense_replace: usize,
    /// Every `moe_layer_freq`-th layer (from `first_k_dense_replace`) is MoE.
    pub moe_layer_freq: usize,
    /// Query LoRA rank `Rq`; `None` means a direct `q_proj` (V2-Lite).
    pub q_lora_rank: Option<usize>,
    /// KV latent rank `Rkv`.
    pub kv_lora_rank: usize,
    /// Non-rotary query/key head dim `Dn`.
    pub qk_nope_head_dim: usize,
    /// Rotary query/key head dim `Dr`.
    pub qk_rope_head_dim: usize,
    /// Value head dim `Dv`.
    pub v_head_dim: usize,
    /// RMSNorm epsilon (HF adds it as an f32).
    pub rms_norm_eps: f32,
    /// RoPE base (`rope_parameters.rope_theta` first, then `rope_theta`, default 10000).
    pub rope_theta: f32,
    /// RoPE scaling; `None` for plain RoPE (absent, null or kind `default`).
    pub rope_scaling: Option<RopeScaling>,
    /// Maximum positions the config advertises.
    pub max_position_embeddings: usize,
    /// Output head shares the embedding (no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token id.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token ids (`eos_token_id` as int or list).
    pub eos_token_ids: Vec<u32>,
    /// MTP modules stored after the main layers (`num_nextn_predict_layers` / `num_mtp_layers`).
    pub num_nextn_predict_layers: usize,
    /// Block-FP8 quantization, if the checkpoint is quantized.
    pub quantization: Option<QuantizationConfig>,
    /// `torch_dtype` (or the newer `dtype`) as written.
    pub torch_dtype: Option<String>,
    /// HF `rope_interleave` (default true): the checkpoint's rope dims are pair-interleaved.
    pub rope_interleave: bool,
    /// MLP activation (`silu` for every DeepSeek model).
    pub hidden_act: String,
    /// Biases on `q_a_proj`, `kv_a_proj_with_mqa` and `o_proj` (false for every release).
    pub attention_bias: bool,
    /// Biases on every MLP projection (HF V2 `mlp_bias`; false for every release).
    pub mlp_bias: bool,
    /// The original JSON object, so a converter can rewrite and save it.
    pub raw: Value,
}

impl ModelConfig {
    /// Reads and parses `config.json`; errors name the file and the offending field.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a `config.json`.
    pub fn from_json_str(s: &str) -> Result<Self> {
        Self::parse(s, "config.json")
    }

    /// Parses an already decoded `config.json` value.
    pub fn from_json_value(v: Value) -> Result<Self> {
        Self::from_value(v, "config.json")
    }

    fn parse(text: &str, src: &str) -> Result<Self> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::model(format!("{src}: invalid JSON: {e}")))?;
        Self::from_value(v, src)
    }

    fn from_value(raw: Value, src: &str) -> Result<Self> {
        let map = raw.as_object().ok_or_else(|| {
            Error::model(format!("{src}: expected a JSON object at the top level"))
        })?;
        let o = Obj {
            map,
            src,
            prefix: "",
        };
        let architecture = detect_architecture(&o)?;
        let v3 = architecture == Architecture::DeepseekV3;

        // Defaults: transformers 5.x DeepseekV3Config / DeepseekV2Config.
        let d = |v3_val: usize, v2_val: usize| if v3 { v3_val } else { v2_val };

        let vocab_size = o.usize_or("vocab_size", d(129280, 102400))?;
        let hidden_size = o.usize_or("hidden_size", d(7168, 4096))?;
        let intermediate_size = o.usize_or("intermediate_size", d(18432, 11008))?;
        let moe_intermediate_size = o.usize_or("moe_intermediate_size", d(2048, 1407))?;
        let num_hidden_layers = o.usize_or("num_hidden_layers", d(61, 32))?;
        let num_attention_heads = o.usize_or("num_attention_heads", d(128, 32))?;
        let num_key_value_heads = o.opt_usize("num_key_value_heads", None)?;
        let n_shared_experts = o.opt_usize("n_shared_experts", Some(d(1, 2)))?.unwrap_or(0);
        let n_routed_experts = o
            .opt_usize("n_routed_experts", Some(d(256, 64)))?
            .unwrap_or(0);
        let num_experts_per_tok = o
            .opt_usize("num_experts_per_tok", if v3 { Some(8) } else { None })?
            .unwrap_or(0);
        let routed_scaling_factor =
            o.f64_or("routed_scaling_factor", if v3 { 2.5 } else { 1.0 })? as f32;
        let n_group = o
            .opt_usize("n_group", if v3 { Some(8) } else { None })?
            .unwrap_or(1);
        let topk_group = o
            .opt_usize("topk_group", if v3 { Some(4) } else { None })?
            .unwrap_or(1);
        let topk_method = match o.opt_string("topk_method")? {
            None if v3 => TopkMethod::NoauxTc,
            None => TopkMethod::Greedy,
            Some(s) => match s.as_str() {
                "noaux_tc" => TopkMethod::NoauxTc,
                "greedy" => TopkMethod::Greedy,
                "group_limited_greedy" => TopkMethod::GroupLimitedGreedy,
                _ => {
                    return Err(Error::model(format!(
                        "{src}: field `topk_method`: unknown value {s:?} (expected noaux_tc, greedy or group_limited_greedy)"
                    )))
                }
            },
        };
        let scoring_func = match o.opt_string("scoring_func")? {
            None if v3 => ScoringFunc::Sigmoid,
            None => ScoringFunc::Softmax,
            Some(s) => match s.as_str() {
                "sigmoid" => ScoringFunc::Sigmoid,
                "softmax" => ScoringFunc::Softmax,
                _ => {
                    return Err(Error::model(format!(
                        "{src}: field `scoring_func`: unknown value {s:?} (expected sigmoid or softmax)"
                    )))
                }
            },
        };
        let norm_topk_prob = o.bool_or("norm_topk_prob", v3)?;
        let first_k_dense_replace = o.usize_or("first_k_dense_replace", d(3, 0))?;
        let moe_layer_freq = o.usize_or("moe_layer_freq", 1)?;
        let q_lora_rank = o.opt_usize("q_lora_rank", Some(1536))?;
        let kv_lora_rank = o.usize_or("kv_lora_rank", 512)?;
        let qk_nope_head_dim = o.usize_or("qk_nope_head_dim", 128)?;
        let qk_rope_head_dim = o.usize_or("qk_rope_head_dim", 64)?;
        let v_head_dim = o.usize_or("v_head_dim", 128)?;
        let rms_norm_eps = o.f64_or("rms_norm_eps", 1e-6)? as f32;
        let max_position_embeddings = o.usize_or("max_position_embeddings", d(4096, 2048))?;
        let tie_word_embeddings = o.bool_or("tie_word_embeddings", false)?;
        let bos_token_id = match o.get("bos_token_id") {
            Field::Absent => Some(if v3 { 0 } else { 1 }),
            Field::Null => None,
            Field::Val(v) => Some(o.token_id("bos_token_id", v)?),
        };
        let eos_token_ids = match o.get("eos_token_id") {
            Field::Absent => vec![if v3 { 1 } else { 2 }],
            Field::Null => vec![],
            Field::Val(Value::Array(items)) => items
                .iter()
                .map(|v| o.token_id("eos_token_id", v))
                .collect::<Result<Vec<_>>>()?,
            Field::Val(v) => vec![o.token_id("eos_token_id", v)?],
        };
        let num_nextn_predict_layers = if o.has("num_nextn_predict_layers") {
            o.usize_or("num_nextn_predict_layers", 0)?
        } else {
            o.usize_or("num_mtp_layers", d(1, 0))?
        };
        let torch_dtype = match o.opt_string("torch_dtype")? {
            Some(s) => Some(s),
            None => o.opt_string("dtype")?,
        };
        let rope_interleave = o.bool_or("rope_interleave", true)?;
        let hidden_act = o
            .opt_string("hidden_act")?
            .unwrap_or_else(|| "silu".to_string());
        let attention_bias = o.bool_or("attention_bias", false)?;
        let mlp_bias = o.bool_or("mlp_bias", false)?;
        let quantization = parse_quantization(&o)?;
        let (rope_theta, rope_scaling) = parse_rope(&o, max_position_embeddings)?;

        Ok(ModelConfig {
            architecture,
            vocab_size,
            hidden_size,
            intermediate_size,
            moe_intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            n_shared_experts,
            n_routed_experts,
            num_experts_per_tok,
            routed_scaling_factor,
            n_group,
            topk_group,
            topk_method,
            scoring_func,
            norm_topk_prob,
            first_k_dense_replace,
            moe_layer_freq,
            q_lora_rank,
            kv_lora_rank,
            qk_nope_head_dim,
            qk_rope_head_dim,
            v_head_dim,
            rms_norm_eps,
            rope_theta,
            rope_scaling,
            max_position_embeddings,
            tie_word_embeddings,
            bos_token_id,
            eos_token_ids,
            num_nextn_predict_layers,
            quantization,
            torch_dtype,
            rope_interleave,
            hidden_act,
            attention_bias,
            mlp_bias,
            raw,
        })
    }

    /// True iff layer `layer` uses the MoE block (spec §1.4): routed experts exist,
    /// `layer ≥ first_k_dense_replace` and `layer % moe_layer_freq == 0`.
    pub fn is_moe_layer(&self, layer: usize) -> bool {
        self.n_routed_experts > 0
            && layer >= self.first_k_dense_replace
            && layer % self.moe_layer_freq.max(1) == 0
    }

    /// Query/key head dim `Dqk = qk_nope_head_dim + qk_rope_head_dim`.
    pub fn qk_head_dim(&self) -> usize {
        self.qk_nope_head_dim + self.qk_rope_head_dim
    }

    /// True iff the router has `e_score_correction_bias` (exactly when `topk_method` is `noaux_tc`).
    pub fn has_router_bias(&self) -> bool {
        self.topk_method == TopkMethod::NoauxTc
    }

    /// FP8 weight block `[rows, cols]`: `quantization_config.weight_block_size`, else 128×128.
    pub fn weight_block_size(&self) -> [usize; 2] {
        self.quantization
            .as_ref()
            .map(|q| q.weight_block_size)
            .unwrap_or([128, 128])
    }

    /// How FP8 activation scales are stored: `quantization_config.scale_fmt`, else plain f32.
    pub fn act_scale_format(&self) -> ActScaleFormat {
        self.quantization
            .as_ref()
            .map(|q| q.scale_fmt)
            .unwrap_or_default()
    }

    /// Checks internal consistency and support; reports every problem found in one error.
    pub fn validate(&self) -> Result<()> {
        // Bounds first: the consistency checks below loop over layers and form products of
        // dimensions, which must not run on an unbounded field.
        let over = check_limits(self);
        if !over.is_empty() {
            return Err(Error::model(format!(
                "invalid model config ({} field(s) over their limits):\n  - {}",
                over.len(),
                over.join("\n  - ")
            )));
        }
        let mut p: Vec<String> = Vec::new();
        let mut need = |ok: bool, msg: String| {
            if !ok {
                p.push(msg)
            }
        };
        need(self.vocab_size > 0, "vocab_size must be > 0".into());
        need(self.hidden_size > 0, "hidden_size must be > 0".into());
        need(
            self.num_hidden_layers > 0,
            "num_hidden_layers must be > 0".into(),
        );
        need(
            self.num_attention_heads > 0,
            "num_attention_heads must be > 0".into(),
        );
        need(
            self.num_key_value_heads != Some(0),
            "num_key_value_heads must be > 0 when given".into(),
        );
        need(self.kv_lora_rank > 0, "kv_lora_rank must be > 0".into());
        need(
            self.q_lora_rank != Some(0),
            "q_lora_rank must be > 0 or null (direct q_proj)".into(),
        );
        need(
            self.qk_nope_head_dim > 0,
            "qk_nope_head_dim must be > 0".into(),
        );
        need(
            self.qk_rope_head_dim > 0 && self.qk_rope_head_dim % 2 == 0,
            format!(
                "qk_rope_head_dim must be even and > 0, got {}",
                self.qk_rope_head_dim
            ),
        );
        need(self.v_head_dim > 0, "v_head_dim must be > 0".into());
        need(
            self.max_position_embeddings > 0,
            "max_position_embeddings must be > 0".into(),
        );
        need(
            self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0,
            format!(
                "rms_norm_eps must be finite and > 0, got {}",
                self.rms_norm_eps
            ),
        );
        need(
            self.rope_theta.is_finite() && self.rope_theta > 1.0,
            format!("rope_theta must be finite and > 1, got {}", self.rope_theta),
        );
        need(
            self.hidden_act == "silu",
            format!(
                "hidden_act {:?} is not supported (only \"silu\")",
                self.hidden_act
            ),
        );
        need(
            self.moe_layer_freq >= 1,
            "moe_layer_freq must be >= 1".into(),
        );

        let any_dense = (0..self.num_hidden_layers + self.num_nextn_predict_layers)
            .any(|l| !self.is_moe_layer(l));
        if any_dense {
            need(
                self.intermediate_size > 0,
                "intermediate_size must be > 0 (the model has dense MLP layers)".into(),
            );
        }
        let e = self.n_routed_experts;
        if e > 0 {
            let (k, g, gk) = (self.num_experts_per_tok, self.n_group, self.topk_group);
            need(
                self.moe_intermediate_size > 0,
                "moe_intermediate_size must be > 0".into(),
            );
            need(
                k >= 1 && k <= e,
                format!("num_experts_per_tok = {k} must be in 1..={e} (n_routed_experts)"),
            );
            need(g >= 1, "n_group must be >= 1".into());
            if g >= 1 {
                need(
                    e % g == 0,
                    format!("n_routed_experts = {e} must be divisible by n_group = {g}"),
                );
                need(
                    gk >= 1 && gk <= g,
                    format!("topk_group = {gk} must be in 1..={g} (n_group)"),
                );
                let grouped = matches!(
                    self.topk_method,
                    TopkMethod::NoauxTc | TopkMethod::GroupLimitedGreedy
                );
                if grouped && e % g == 0 && gk >= 1 {
                    let avail = gk.min(g) * (e / g);
                    need(
                        k <= avail,
                        format!(
                            "num_experts_per_tok = {k} exceeds the {avail} experts of the topk_group = {gk} kept groups"
                        ),
                    );
                }
                if self.topk_method == TopkMethod::NoauxTc && e % g == 0 {
                    need(
                        e / g >= 2,
                        format!("noaux_tc scores a group by its top two experts; n_routed_experts / n_group = {} < 2", e / g),
                    );
                }
            }
            need(
                !(self.topk_method == TopkMethod::NoauxTc
                    && self.scoring_func != ScoringFunc::Sigmoid),
                "topk_method noaux_tc requires scoring_func sigmoid".into(),
            );
            need(
                self.routed_scaling_factor.is_finite() && self.routed_scaling_factor > 0.0,
                format!(
                    "routed_scaling_factor must be finite and > 0, got {}",
                    self.routed_scaling_factor
                ),
            );
        }
        if let Some(rs) = &self.rope_scaling {
            match &rs.kind {
                RopeScalingKind::Yarn | RopeScalingKind::Linear => {}
                RopeScalingKind::Other(k) => {
                    p.push(format!(
                        "rope_scaling type {k:?} is not supported (yarn, linear)"
                    ));
                }
            }
            if !(rs.factor.is_finite() && rs.factor > 0.0) {
                p.push(format!(
                    "rope_scaling.factor must be finite and > 0, got {}",
                    rs.factor
                ));
            }
            for (field, value) in [
                ("rope_scaling.mscale", Some(rs.mscale)),
                ("rope_scaling.mscale_all_dim", Some(rs.mscale_all_dim)),
                ("rope_scaling.attention_factor", rs.attention_factor),
            ] {
                if value.is_some_and(|v| !v.is_finite()) {
                    p.push(format!("{field} must be finite, got {value:?}"));
                }
            }
            if rs.attention_factor.is_some_and(|a| a <= 0.0) {
                p.push(format!(
                    "rope_scaling.attention_factor must be > 0, got {:?}",
                    rs.attention_factor
                ));
            }
            if rs.kind == RopeScalingKind::Yarn {
                if rs.original_max_position_embeddings == 0 {
                    p.push("rope_scaling.original_max_position_embeddings must be > 0".into());
                }
                if !(rs.beta_fast.is_finite()
                    && rs.beta_slow.is_finite()
                    && rs.beta_fast > 0.0
                    && rs.beta_slow > 0.0)
                {
                    p.push(format!(
                        "rope_scaling.beta_fast/beta_slow must be finite and > 0, got {}/{}",
                        rs.beta_fast, rs.beta_slow
                    ));
                }
            }
        }
        if let Some(q) = &self.quantization {
            if q.quant_method != "fp8" {
                p.push(format!(
                    "quantization_config.quant_method {:?} is not supported (only \"fp8\")",
                    q.quant_method
                ));
            }
            if q.fmt != "e4m3" {
                p.push(format!(
                    "quantization_config.fmt {:?} is not supported (only \"e4m3\")",
                    q.fmt
                ));
            }
            if q.weight_block_size[0] == 0 || q.weight_block_size[1] == 0 {
                p.push(format!(
                    "quantization_config.weight_block_size {:?} must be positive",
                    q.weight_block_size
                ));
            }
        }
        for &id in self.bos_token_id.iter().chain(&self.eos_token_ids) {
            if id as usize >= self.vocab_size {
                p.push(format!(
                    "special token id {id} is outside the vocabulary (vocab_size = {})",
                    self.vocab_size
                ));
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(Error::model(format!(
                "invalid model config ({} problem(s)):\n  - {}",
                p.len(),
                p.join("\n  - ")
            )))
        }
    }
}

fn detect_architecture(o: &Obj<'_>) -> Result<Architecture> {
    let arch0 = o
        .map
        .get("architectures")
        .and_then(|a| a.as_array())
        .and_then(|a| a.first())
        .and_then(|a| a.as_str());
    if let Some(a) = arch0 {
        if a.starts_with("DeepseekV3") {
            return Ok(Architecture::DeepseekV3);
        }
        if a.starts_with("DeepseekV2") {
            return Ok(Architecture::DeepseekV2);
        }
    }
    let model_type = o.map.get("model_type").and_then(|m| m.as_str());
    match model_type {
        Some("deepseek_v3") => Ok(Architecture::DeepseekV3),
        Some("deepseek_v2") => Ok(Architecture::DeepseekV2),
        _ => Err(Error::model(format!(
            "{}: fields `architectures`/`model_type`: not a DeepSeek-V3/V2 model (architectures[0] = {:?}, model_type = {:?})",
            o.src, arch0, model_type
        ))),
    }
}

fn parse_quantization(o: &Obj<'_>) -> Result<Option<QuantizationConfig>> {
    let v = match o.get("quantization_config") {
        Field::Absent | Field::Null => return Ok(None),
        Field::Val(v) => v,
    };
    let map = v
        .as_object()
        .ok_or_else(|| o.err("quantization_config", "an object", v))?;
    let q = Obj {
        map,
        src: o.src,
        prefix: "quantization_config.",
    };
    let weight_block_size = match q.get("weight_block_size") {
        Field::Absent | Field::Null => [128, 128],
        Field::Val(Value::Array(a)) if a.len() == 2 => [
            q.to_usize("weight_block_size", &a[0])?,
            q.to_usize("weight_block_size", &a[1])?,
        ],
        Field::Val(v) => return Err(q.err("weight_block_size", "a list of two integers", v)),
    };
    Ok(Some(QuantizationConfig {
        quant_method: q
            .opt_string("quant_method")?
            .unwrap_or_else(|| "fp8".into()),
        fmt: q.opt_string("fmt")?.unwrap_or_else(|| "e4m3".into()),
        activation_scheme: q
            .opt_string("activation_scheme")?
            .unwrap_or_else(|| "dynamic".into()),
        weight_block_size,
        scale_fmt: parse_scale_fmt(&q)?,
    }))
}

/// `quantization_config.scale_fmt`: absent or null, or `"ue8m0"`.
fn parse_scale_fmt(q: &Obj<'_>) -> Result<ActScaleFormat> {
    let spelled = q.opt_string("scale_fmt")?;
    ActScaleFormat::parse(spelled.as_deref()).ok_or_else(|| {
        Error::model(format!(
            "{}: field `{}scale_fmt`: {:?} is not supported (absent, null or \"ue8m0\")",
            q.src,
            q.prefix,
            spelled.unwrap_or_default()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_as_floats_are_accepted_and_fractions_rejected() {
        let c = ModelConfig::from_json_str(r#"{"model_type":"deepseek_v3","hidden_size":7168.0}"#)
            .unwrap();
        assert_eq!(c.hidden_size, 7168);
        let e = ModelConfig::from_json_str(r#"{"model_type":"deepseek_v3","hidden_size":7168.5}"#)
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("hidden_size") && msg.contains("config.json"),
            "{msg}"
        );
    }
}
