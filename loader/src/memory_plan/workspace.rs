//! The memory that grows with context and batch: the MLA latent cache and an estimate of the
//! activation workspace of one forward step.

use crate::config::ModelConfig;

use super::layout::{ExpertsOn, Layout};
use super::shapes::WeightStorage;

/// Tokens of one sequence's prompt fed per step: the serving engine's default
/// `prefill_chunk` (runtime `EngineConfig`), which also bounds `generate`'s prefill work here.
pub const PREFILL_CHUNK: usize = 512;

/// Latent-cache bytes on each device: every layer (main and MTP) keeps `kv_lora_rank +
/// qk_rope_head_dim` activation-dtype values per token (spec §3.5), for `context × batch`
/// tokens; replicated on every rank (the latent is shared by all heads).
pub fn latent_cache_bytes(
    cfg: &ModelConfig,
    storage: WeightStorage,
    context: usize,
    batch: usize,
) -> u64 {
    let layers = (cfg.num_hidden_layers + cfg.num_nextn_predict_layers) as u64;
    let per_token = (cfg.kv_lora_rank + cfg.qk_rope_head_dim) as u64;
    layers * per_token * context as u64 * batch as u64 * storage.activation_bytes()
}

/// The activation workspace estimate, (each device, host).
///
/// With `c = min(context, 512)` prompt tokens per sequence per step, `T = batch × c` tokens in
/// the step, `a` bytes per activation, `Nl = heads / TP`, `F` the widest local MLP intermediate
/// (`intermediate_size / TP`, `moe_intermediate_size × n_shared_experts / TP`, or
/// `num_experts_per_tok × moe_intermediate_size` when the routed experts run on the device):
///
/// ```text
/// device = a·T·(4·H + Nl·(Dqk + Dv) + 2·F + 2·K·H)   hidden states, q and head outputs,
///                                                    gate/up outputs, routed token copies
///        + a·context·Nl·(Dn + Dv)                    one sequence's K and V from its latent
///        + 4·Nl·c·context                            one sequence's f32 attention scores
///        + 4·batch·V                                 f32 logits, one row per sequence
/// host   = a·T·K·(2·Im + 2·H)                        with --experts-on host: routed token
///                                                    copies and expert intermediates
/// ```
///
/// Attention runs one sequence at a time (the runtime's spans), so its terms do not scale with
/// the batch; the projections and MLPs run over all `T` tokens at once.
pub fn workspace_bytes(
    cfg: &ModelConfig,
    storage: WeightStorage,
    layout: &Layout,
    context: usize,
    batch: usize,
) -> (u64, u64) {
    let a = storage.activation_bytes();
    let tp = layout.tensor_parallel as u64;
    let chunk = context.min(PREFILL_CHUNK) as u64;
    let (context, batch) = (context as u64, batch as u64);
    let tokens = batch * chunk;
    let h = cfg.hidden_size as u64;
    let heads = cfg.num_attention_heads as u64 / tp;
    let (dqk, dn, dv) = (
        cfg.qk_head_dim() as u64,
        cfg.qk_nope_head_dim as u64,
        cfg.v_head_dim as u64,
    );
    let routed = cfg.n_routed_experts > 0;
    let k = if routed {
        cfg.num_experts_per_tok as u64
    } else {
        0
    };
    let im = cfg.moe_intermediate_size as u64;
    let mut widest = cfg.intermediate_size as u64 / tp;
    if routed {
        widest = widest.max(im * cfg.n_shared_experts as u64 / tp);
        if layout.experts_on == ExpertsOn::Device {
            widest = widest.max(k * im);
        }
    }
    let device = a * tokens * (4 * h + heads * (dqk + dv) + 2 * widest + 2 * k * h)
        + a * context * heads * (dn + dv)
        + 4 * heads * chunk * context
        + 4 * batch * cfg.vocab_size as u64;
    let host = match layout.experts_on {
        ExpertsOn::Host => a * tokens * k * (2 * im + 2 * h),
        ExpertsOn::Device => 0,
    };
    (device, host)
}
