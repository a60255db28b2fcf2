//! Bytes of every tensor the config implies, what kind of weight it is and where the layout
//! puts it — from the shapes alone (spec §1.2), no weights needed.

use crate::config::ModelConfig;
use crate::inventory::{expected_tensors, layer_index, ExpectedTensor, TensorRole};

use super::layout::{ExpertsOn, Layout};

/// How weights are stored in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightStorage {
    /// DeepSeek's release format: every projection inside a decoder layer F8_E4M3 with one F32
    /// `weight_scale_inv` per `block` (rows × columns); embeddings, output heads, norms, the
    /// router and the MTP `eh_proj` BF16; the router bias F32 (spec §1.2).
    Fp8 {
        /// `quantization_config.weight_block_size`.
        block: [usize; 2],
    },
    /// BF16 everywhere but the router bias (F32).
    Bf16,
    /// F32 everywhere.
    F32,
}

impl WeightStorage {
    /// Name as `--precision` spells it.
    pub fn name(self) -> &'static str {
        match self {
            WeightStorage::Fp8 { .. } => "fp8",
            WeightStorage::Bf16 => "bf16",
            WeightStorage::F32 => "f32",
        }
    }

    /// Bytes of one activation value (and of one latent-cache value): f32 at f32, else BF16.
    pub fn activation_bytes(self) -> u64 {
        match self {
            WeightStorage::F32 => 4,
            _ => 2,
        }
    }

    /// (weight bytes, scale bytes) of a tensor of `shape` and `role`.
    fn bytes(self, shape: &[usize], role: TensorRole) -> (u64, u64) {
        let elements = shape.iter().product::<usize>() as u64;
        match (self, role) {
            (WeightStorage::F32, _) | (_, TensorRole::Bias) => (4 * elements, 0),
            (WeightStorage::Fp8 { block }, TensorRole::Weight { quantizable: true }) => {
                let blocks = shape[0].div_ceil(block[0]) * shape[1].div_ceil(block[1]);
                (elements, 4 * blocks as u64)
            }
            _ => (2 * elements, 0),
        }
    }
}

/// What a weight is for; the rows of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// MLA projections of the main layers.
    Attention,
    /// Dense MLP of the first `first_k_dense_replace` layers.
    DenseMlp,
    /// Shared experts of the MoE layers.
    SharedExperts,
    /// Routed experts of the MoE layers.
    RoutedExperts,
    /// `model.embed_tokens` and `lm_head`.
    EmbeddingHead,
    /// Everything of the MTP layers (their attention, experts, embedding/head copies, `eh_proj`).
    Mtp,
    /// RMSNorm weights, FP8 `weight_scale_inv` blocks, the router and its bias.
    NormsScalesRouter,
}

impl Category {
    /// Every category, in the order the plan prints them.
    pub const ALL: [Category; 7] = [
        Category::Attention,
        Category::DenseMlp,
        Category::SharedExperts,
        Category::RoutedExperts,
        Category::EmbeddingHead,
        Category::Mtp,
        Category::NormsScalesRouter,
    ];

    /// Row label.
    pub fn label(self) -> &'static str {
        match self {
            Category::Attention => "attention",
            Category::DenseMlp => "dense MLP",
            Category::SharedExperts => "shared experts",
            Category::RoutedExperts => "routed experts",
            Category::EmbeddingHead => "embedding + head",
            Category::Mtp => "MTP layer(s)",
            Category::NormsScalesRouter => "norms, scales, router",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Bytes per [`Category`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeightBytes(pub [u64; 7]);

impl WeightBytes {
    /// Bytes of one category.
    pub fn get(&self, c: Category) -> u64 {
        self.0[c.index()]
    }

    fn add(&mut self, c: Category, bytes: u64) {
        self.0[c.index()] += bytes;
    }

    /// Sum over the categories.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Which dimension a tensor-parallel split divides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// Kept whole on every rank.
    Replicated,
    /// Output rows divided by TP.
    Rows,
    /// Input columns divided by TP.
    Columns,
    /// Routed expert `x`: on one EP rank (or on the host).
    Expert(usize),
}

/// The TP split of a tensor, from its name (see [`super::layout`]).
fn split_of(name: &str) -> Split {
    if let Some(x) = crate::coverage::expert_index(name) {
        return Split::Expert(x);
    }
    let intermediate_in = name.contains(".mlp.") && name.contains(".down_proj.");
    let intermediate_out =
        name.contains(".mlp.") && (name.contains(".gate_proj.") || name.contains(".up_proj."));
    if name.contains(".q_b_proj.")
        || name.contains(".self_attn.q_proj.")
        || name.contains(".kv_b_proj.")
        || intermediate_out
    {
        Split::Rows
    } else if name.contains(".o_proj.") || intermediate_in {
        Split::Columns
    } else {
        Split::Replicated
    }
}

fn category_of(cfg: &ModelConfig, t: &ExpectedTensor) -> Category {
    let name = t.name.as_str();
    if layer_index(name).is_some_and(|l| l >= cfg.num_hidden_layers) {
        return Category::Mtp;
    }
    match t.role {
        TensorRole::Embedding | TensorRole::Head => return Category::EmbeddingHead,
        TensorRole::Norm | TensorRole::Bias => return Category::NormsScalesRouter,
        TensorRole::Weight { .. } => {}
    }
    if name.contains(".mlp.gate.") {
        Category::NormsScalesRouter
    } else if name.contains(".mlp.experts.") {
        Category::RoutedExperts
    } else if name.contains(".mlp.shared_experts.") {
        Category::SharedExperts
    } else if name.contains(".mlp.") {
        Category::DenseMlp
    } else {
        Category::Attention
    }
}

/// The weights of one device (every device holds the same amounts: the layout's splits are
/// exact) and of the host, plus the whole model once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WeightPlacement {
    /// On each device.
    pub per_device: WeightBytes,
    /// In host RAM (the routed experts with `--experts-on host`).
    pub host: WeightBytes,
    /// Every tensor once (what the checkpoint at this storage holds).
    pub whole_model: WeightBytes,
    /// Extra BF16 copy of `kv_b_proj` on each device at fp8 (absorbed-MLA decode).
    pub decode_copies_per_device: u64,
}

/// Places every tensor of the config (main layers and MTP layers) by `layout`; rank 0 stands
/// for every rank.
pub fn place_weights(
    cfg: &ModelConfig,
    storage: WeightStorage,
    layout: &Layout,
) -> WeightPlacement {
    let tp = layout.tensor_parallel;
    let experts_per_rank = cfg.n_routed_experts / layout.expert_parallel.max(1);
    let mut plan = WeightPlacement::default();
    for t in expected_tensors(cfg, true) {
        let category = category_of(cfg, &t);
        let (weight, scale) = storage.bytes(&t.shape, t.role);
        // A projection's FP8 scales live where the projection lives but are reported beside
        // the norms (they are the format's overhead) — except in the MTP layers, whose row
        // holds everything they cost.
        let add = |into: &mut WeightBytes, w: u64, s: u64| {
            into.add(category, w);
            let scale_row = if category == Category::Mtp {
                Category::Mtp
            } else {
                Category::NormsScalesRouter
            };
            into.add(scale_row, s);
        };
        add(&mut plan.whole_model, weight, scale);
        let split = split_of(&t.name);
        let shard = |dim: usize| {
            let mut shape = t.shape.clone();
            shape[dim] /= tp;
            storage.bytes(&shape, t.role)
        };
        match split {
            Split::Replicated => add(&mut plan.per_device, weight, scale),
            Split::Rows | Split::Columns => {
                let (w, s) = shard(if split == Split::Rows { 0 } else { 1 });
                add(&mut plan.per_device, w, s);
                if storage_is_fp8(storage) && t.name.contains(".kv_b_proj.") {
                    let mut shape = t.shape.clone();
                    shape[0] /= tp;
                    plan.decode_copies_per_device += WeightStorage::Bf16.bytes(&shape, t.role).0;
                }
            }
            Split::Expert(x) => match layout.experts_on {
                ExpertsOn::Host => add(&mut plan.host, weight, scale),
                ExpertsOn::Device if x < experts_per_rank => {
                    add(&mut plan.per_device, weight, scale)
                }
                ExpertsOn::Device => {}
            },
        }
    }
    plan
}

fn storage_is_fp8(storage: WeightStorage) -> bool {
    matches!(storage, WeightStorage::Fp8 { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_follow_the_layout_rules() {
        let p = "model.layers.3";
        assert_eq!(
            split_of(&format!("{p}.self_attn.q_b_proj.weight")),
            Split::Rows
        );
        assert_eq!(
            split_of(&format!("{p}.self_attn.kv_b_proj.weight")),
            Split::Rows
        );
        assert_eq!(
            split_of(&format!("{p}.self_attn.o_proj.weight")),
            Split::Columns
        );
        assert_eq!(
            split_of(&format!("{p}.self_attn.q_a_proj.weight")),
            Split::Replicated
        );
        assert_eq!(
            split_of(&format!("{p}.self_attn.kv_a_proj_with_mqa.weight")),
            Split::Replicated
        );
        assert_eq!(split_of(&format!("{p}.mlp.gate.weight")), Split::Replicated);
        assert_eq!(split_of(&format!("{p}.mlp.up_proj.weight")), Split::Rows);
        assert_eq!(
            split_of(&format!("{p}.mlp.down_proj.weight")),
            Split::Columns
        );
        assert_eq!(
            split_of(&format!("{p}.mlp.shared_experts.gate_proj.weight")),
            Split::Rows
        );
        assert_eq!(
            split_of(&format!("{p}.mlp.experts.17.down_proj.weight")),
            Split::Expert(17)
        );
        assert_eq!(split_of("model.embed_tokens.weight"), Split::Replicated);
        assert_eq!(split_of("lm_head.weight"), Split::Replicated);
    }
}
