//! Weight bytes one decode token reads, the numerator of `concord bench`'s bandwidth floor,
//! counted from the config and the precision's storage rules (docs/benchmarks.md §Floor):
//! one embedding row (not the table), every other weight once, the `num_experts_per_tok`
//! routed experts a token uses (not the others), and kv_b_proj once, in the form decode
//! reads (fp8 mode keeps FP8 codes for prefill and a BF16 dequantization for the absorbed
//! decode; a decode token reads only the second).

use concord_loader::{expected_tensors, ModelConfig, TensorRole};
use concord_runtime::Precision;

/// What a model's weights occupy and what one decode token reads of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightBytes {
    /// Bytes the loaded weights occupy (every copy the runtime holds, MTP excluded).
    pub resident: usize,
    /// Bytes one single-token decode step reads.
    pub per_decode_token: usize,
}

/// The routed expert a tensor belongs to (`…mlp.experts.{e}.…`), if it is one.
fn routed_expert_index(name: &str) -> Option<usize> {
    let rest = name.split_once(".mlp.experts.")?.1;
    rest.split('.').next()?.parse().ok()
}

/// Counts [`WeightBytes`] for `cfg` loaded in `precision` (without an MTP module).
pub fn weight_bytes(cfg: &ModelConfig, precision: Precision) -> WeightBytes {
    let dense = match precision {
        Precision::F32 => 4,
        Precision::Bf16 | Precision::Fp8 => 2,
    };
    let [block_rows, block_cols] = cfg.weight_block_size();
    let fp8 = precision == Precision::Fp8;
    let (mut resident, mut per_decode_token) = (0, 0);
    let mut has_head = false;
    for t in expected_tensors(cfg, false) {
        let elements: usize = t.shape.iter().product();
        let (stored, read) = match t.role {
            TensorRole::Weight { quantizable: true } if fp8 => {
                let (rows, cols) = (t.shape[0], *t.shape.last().unwrap_or(&1));
                let scales = rows.div_ceil(block_rows) * cols.div_ceil(block_cols);
                let codes = elements + 4 * scales;
                if t.name.ends_with("self_attn.kv_b_proj.weight") {
                    // Two copies in memory; decode reads the dense one only.
                    (codes + elements * dense, elements * dense)
                } else {
                    (codes, codes)
                }
            }
            // Biases (the router's e_score_correction_bias) load as F32.
            TensorRole::Bias => (elements * 4, elements * 4),
            // A token reads one row of the table.
            TensorRole::Embedding => (elements * dense, t.shape[1] * dense),
            TensorRole::Head => {
                has_head = true;
                (elements * dense, elements * dense)
            }
            _ => (elements * dense, elements * dense),
        };
        let used = routed_expert_index(&t.name).is_none_or(|e| e < cfg.num_experts_per_tok);
        resident += stored;
        per_decode_token += if used { read } else { 0 };
    }
    if !has_head {
        // Tied embeddings: the runtime loads the table a second time as the head.
        let head = cfg.vocab_size * cfg.hidden_size * dense;
        resident += head;
        per_decode_token += head;
    }
    WeightBytes {
        resident,
        per_decode_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SyntheticSpec;

    const HIDDEN: usize = 512;

    fn config() -> ModelConfig {
        let spec = SyntheticSpec {
            hidden: HIDDEN,
            layers: 2,
        };
        ModelConfig::from_json_value(spec.config()).expect("synthetic config parses")
    }

    /// The synthetic model's dimensions at hidden 512, written out by hand from its config
    /// (V3 ratios): layer 0 dense, layer 1 MoE with 64 experts, 8 used per token.
    struct Dims;
    impl Dims {
        const H: usize = HIDDEN;
        const V: usize = 16384;
        const DENSE_FFN: usize = 512 * 18 / 7;
        const EXPERT_FFN: usize = 512 * 2 / 7;
        const HEADS: usize = 512 / 56;
        const Q_LORA: usize = 512 * 3 / 14;
        const KV_LORA: usize = 512 / 14;
        const EXPERTS: usize = 64;
        const USED: usize = 8;
        /// [rows, cols] of every projection of one attention block.
        const ATTENTION: [[usize; 2]; 5] = [
            [Self::Q_LORA, Self::H],
            [Self::HEADS * 192, Self::Q_LORA],
            [Self::KV_LORA + 64, Self::H],
            [Self::HEADS * 256, Self::KV_LORA],
            [Self::H, Self::HEADS * 128],
        ];
    }

    /// Bytes of one `[rows, cols]` projection stored as block FP8 (1 byte a weight, one f32
    /// scale per 128×128 block).
    fn fp8(rows: usize, cols: usize) -> usize {
        rows * cols + 4 * rows.div_ceil(128) * cols.div_ceil(128)
    }

    #[test]
    fn bf16_decode_reads_one_embedding_row_and_the_used_experts() {
        let attention: usize = Dims::ATTENTION.iter().map(|[r, c]| r * c).sum::<usize>()
            + Dims::Q_LORA
            + Dims::KV_LORA;
        let norms = 2 * Dims::H;
        let dense_layer = norms + attention + 3 * Dims::H * Dims::DENSE_FFN;
        let moe_layer = norms
            + attention
            + Dims::EXPERTS * Dims::H
            + 3 * Dims::H * Dims::EXPERT_FFN
            + Dims::USED * 3 * Dims::H * Dims::EXPERT_FFN;
        let params = Dims::H + Dims::V * Dims::H + Dims::H + dense_layer + moe_layer;
        let bias = 4 * Dims::EXPERTS;
        let counted = weight_bytes(&config(), Precision::Bf16);
        assert_eq!(counted.per_decode_token, 2 * params + bias);
    }

    #[test]
    fn fp8_decode_reads_kv_b_proj_once_as_bf16() {
        let projections = |kv_b_bytes: usize| -> usize {
            let [qa, qb, kva, _, o] = Dims::ATTENTION;
            [qa, qb, kva, o]
                .iter()
                .map(|[r, c]| fp8(*r, *c))
                .sum::<usize>()
                + kv_b_bytes
        };
        let [kv_b_rows, kv_b_cols] = Dims::ATTENTION[3];
        let attention = projections(2 * kv_b_rows * kv_b_cols) + 2 * (Dims::Q_LORA + Dims::KV_LORA);
        let norms = 2 * 2 * Dims::H;
        let mlp = |ffn: usize| 2 * fp8(ffn, Dims::H) + fp8(Dims::H, ffn);
        let dense_layer = norms + attention + mlp(Dims::DENSE_FFN);
        let router = 2 * Dims::EXPERTS * Dims::H + 4 * Dims::EXPERTS;
        let moe_layer = norms + attention + router + (1 + Dims::USED) * mlp(Dims::EXPERT_FFN);
        let outside_layers = 2 * (Dims::H + Dims::V * Dims::H + Dims::H);
        let counted = weight_bytes(&config(), Precision::Fp8);
        assert_eq!(
            counted.per_decode_token,
            outside_layers + dense_layer + moe_layer
        );
    }

    /// The resident count agrees with the buffers the runtime actually allocates, so the
    /// storage rules above are the runtime's (kv_b_proj's second copy in fp8 included).
    #[test]
    fn resident_bytes_match_the_loaded_model() {
        let dir = tempfile::tempdir().expect("temporary directory");
        SyntheticSpec {
            hidden: HIDDEN,
            layers: 2,
        }
        .write(dir.path())
        .expect("synthetic model written");
        for precision in [Precision::Bf16, Precision::Fp8] {
            let backend = concord_runtime::open_backend("cpu").expect("cpu backend");
            let options = concord_runtime::LoadOptions {
                precision: Some(precision),
                max_positions: Some(64),
                mtp: false,
                ..Default::default()
            };
            let model =
                concord_runtime::Model::load(dir.path(), backend, &options, &mut |_, _| true)
                    .expect("synthetic model loads");
            assert_eq!(
                weight_bytes(&config(), precision).resident,
                model.weight_bytes(),
                "{}",
                precision.name()
            );
        }
    }
}
