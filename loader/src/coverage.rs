//! Does the checkpoint's extent match the config's? Layers and experts the config does not
//! describe are errors (a config declaring fewer layers than the checkpoint holds would
//! otherwise run a truncated model without a word), and a config describing far more tensors
//! than the checkpoint holds is rejected before the per-tensor inventory is built, so a huge
//! `num_hidden_layers × n_routed_experts` never turns into hundreds of millions of names.

use concord_core::{Error, Result};

use crate::checkpoint::Checkpoint;
use crate::config::ModelConfig;
use crate::inventory::layer_index;

/// The expert index of a `….mlp.experts.{e}.…` tensor name.
pub fn expert_index(name: &str) -> Option<usize> {
    let rest = &name[name.find(".experts.")? + ".experts.".len()..];
    rest[..rest.find('.')?].parse().ok()
}

/// A lower bound on the number of tensors [`crate::expected_tensors`] lists for `cfg`
/// (without MTP): the embedding, and per layer three MLP projections (dense) or three per
/// routed expert (MoE). Saturates instead of overflowing.
fn min_expected_tensors(cfg: &ModelConfig) -> usize {
    let moe_layers = (0..cfg.num_hidden_layers)
        .filter(|&l| cfg.is_moe_layer(l))
        .count();
    let dense_layers = cfg.num_hidden_layers - moe_layers;
    let per_moe_layer = cfg.n_routed_experts.saturating_mul(3);
    moe_layers
        .saturating_mul(per_moe_layer)
        .saturating_add(dense_layers.saturating_mul(3))
        .saturating_add(1)
}

/// Whether layer `l` holds any tensor only an MTP module has.
fn has_mtp_tensor(ckpt: &Checkpoint, l: usize) -> bool {
    [
        "eh_proj.weight",
        "enorm.weight",
        "hnorm.weight",
        "shared_head.norm.weight",
        "shared_head.head.weight",
    ]
    .iter()
    .any(|t| ckpt.contains(&format!("model.layers.{l}.{t}")))
}

/// Checks that every `model.layers.{l}` of `ckpt` is a layer the config describes
/// (`l < num_hidden_layers + num_nextn_predict_layers`), every `experts.{e}` an expert it
/// describes (`e < n_routed_experts`), that a layer in the MTP range holds at least one
/// MTP-only tensor (`eh_proj`, `enorm`, `hnorm`, `shared_head`), and that the checkpoint holds at least as many tensors
/// as the config requires. Errors name the field and an example tensor.
pub fn check_checkpoint_extent(cfg: &ModelConfig, ckpt: &Checkpoint) -> Result<()> {
    let layers = cfg
        .num_hidden_layers
        .saturating_add(cfg.num_nextn_predict_layers);
    let mut extra_layer: Option<(usize, &str)> = None;
    let mut extra_expert: Option<(usize, &str)> = None;
    // An MTP-numbered layer holding none of the MTP module's own tensors is a plain decoder
    // layer: the config declares fewer main layers than the checkpoint holds. (One with some
    // of them is a damaged MTP module, which only matters when MTP is asked for.)
    let mut mtp_layer_without_eh: Option<(usize, &str)> = None;
    for name in ckpt.names() {
        if let Some(l) = layer_index(name) {
            if (cfg.num_hidden_layers..layers).contains(&l)
                && mtp_layer_without_eh.is_none()
                && !has_mtp_tensor(ckpt, l)
            {
                mtp_layer_without_eh = Some((l, name));
            }
            if l >= layers && extra_layer.is_none_or(|(seen, _)| l > seen) {
                extra_layer = Some((l, name));
            }
        }
        if let Some(e) = expert_index(name) {
            if e >= cfg.n_routed_experts && extra_expert.is_none_or(|(seen, _)| e > seen) {
                extra_expert = Some((e, name));
            }
        }
    }
    if let Some((l, name)) = extra_layer {
        return Err(Error::model(format!(
            "checkpoint {} holds layer {l} (e.g. `{name}`), but config.json describes only \
             num_hidden_layers = {} + num_nextn_predict_layers = {} layers",
            ckpt.dir().display(),
            cfg.num_hidden_layers,
            cfg.num_nextn_predict_layers
        )));
    }
    if let Some((l, name)) = mtp_layer_without_eh {
        return Err(Error::model(format!(
            "checkpoint {} holds layer {l} (e.g. `{name}`) without any MTP tensor (`eh_proj`, \
             `enorm`, `hnorm`, `shared_head`): it is a \
             decoder layer, but config.json describes only num_hidden_layers = {} (layers from \
             {} on are the num_nextn_predict_layers = {} MTP modules)",
            ckpt.dir().display(),
            cfg.num_hidden_layers,
            cfg.num_hidden_layers,
            cfg.num_nextn_predict_layers
        )));
    }
    if let Some((e, name)) = extra_expert {
        return Err(Error::model(format!(
            "checkpoint {} holds expert {e} (e.g. `{name}`), but config.json describes only \
             n_routed_experts = {}",
            ckpt.dir().display(),
            cfg.n_routed_experts
        )));
    }
    let needed = min_expected_tensors(cfg);
    if needed > ckpt.len() {
        return Err(Error::model(format!(
            "checkpoint {} holds {} tensors, but config.json (num_hidden_layers = {}, \
             n_routed_experts = {}) describes at least {needed}",
            ckpt.dir().display(),
            ckpt.len(),
            cfg.num_hidden_layers,
            cfg.n_routed_experts
        )));
    }
    Ok(())
}
