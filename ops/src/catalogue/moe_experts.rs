use concord_core::{ActScaleFormat, DType, Error, Result};
use serde::Serialize;

use super::check::{activation_out, arity, ceil_div, ACTIVATION, DENSE_WEIGHT};
use super::fp8_act_quant::FP8_ACT_BLOCK;
use crate::op::OpContract;
use crate::TensorDesc;

/// How the stacked expert weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExpertWeights {
    /// F32 or BF16 gate/up [E,I,H] and down [E,H,I].
    Dense,
    /// F8_E4M3 weights, each followed by its F32 block scales [E,⌈rows/b0⌉,⌈cols/128⌉];
    /// activations are quantized like [`super::Fp8ActQuant`] before each projection.
    BlockFp8 {
        /// `weight_block_size`.
        block: [usize; 2],
        /// The activation scales' format (`quantization_config.scale_fmt`).
        scale_fmt: ActScaleFormat,
    },
}

/// Routed experts of DeepSeekMoE: `y[t] = A(Σ_k w[t,k] · down_e(A(silu(gate_e x)·up_e x)))`,
/// ranks summed in order in f32, each projection rounded to A —
/// x [T,H], ids U32 [T,K], weights F32 [T,K], gate, up, down (+ scales) → [T,H].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoeExperts {
    /// Weight storage.
    pub weights: ExpertWeights,
    /// Output (activation) dtype, also the rounding of each projection.
    pub out: DType,
}

impl OpContract for MoeExperts {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        activation_out("moe_experts", self.out)?;
        let fp8 = matches!(self.weights, ExpertWeights::BlockFp8 { .. });
        let inputs = arity("moe_experts", inputs, if fp8 { 9 } else { 6 })?;
        let (x, ids, w) = (&inputs[0], &inputs[1], &inputs[2]);
        x.expect_rank(2, "moe_experts x")?
            .expect_dtype(ACTIVATION, "moe_experts x")?;
        let (t, h) = (x.shape[0], x.shape[1]);
        ids.expect_rank(2, "moe_experts ids")?
            .expect_dtype(&[DType::U32], "moe_experts ids")?
            .expect_dim(0, t, "moe_experts ids")?;
        w.expect_dtype(&[DType::F32], "moe_experts weights")?;
        if w.shape != ids.shape {
            return Err(Error::invalid(format!(
                "moe_experts: weights {:?} vs ids {:?}",
                w.shape, ids.shape
            )));
        }
        let stride = if fp8 { 2 } else { 1 };
        let gate = &inputs[3];
        gate.expect_rank(3, "moe_experts gate")?
            .expect_dim(2, h, "moe_experts gate")?;
        let (e, i) = (gate.shape[0], gate.shape[1]);
        let up = &inputs[3 + stride];
        let down = &inputs[3 + 2 * stride];
        if up.shape != gate.shape || down.shape != [e, h, i] {
            return Err(Error::invalid(format!(
                "moe_experts: gate {:?}, up {:?}, down {:?} are not [E,I,H],[E,I,H],[E,H,I]",
                gate.shape, up.shape, down.shape
            )));
        }
        let allowed: &[DType] = if fp8 { &[DType::F8E4M3] } else { DENSE_WEIGHT };
        for (m, what) in [(gate, "gate"), (up, "up"), (down, "down")] {
            m.expect_dtype(allowed, &format!("moe_experts {what}"))?;
        }
        if let ExpertWeights::BlockFp8 { block, .. } = self.weights {
            if block[1] != FP8_ACT_BLOCK || block[0] == 0 {
                return Err(Error::unsupported(format!(
                    "moe_experts: weight block {block:?}"
                )));
            }
            for (k, (rows, cols), what) in
                [(4, (i, h), "gate"), (6, (i, h), "up"), (8, (h, i), "down")]
            {
                let s = &inputs[k];
                s.expect_dtype(&[DType::F32], "moe_experts scales")?;
                let want = [e, ceil_div(rows, block[0]), ceil_div(cols, block[1])];
                if s.shape != want {
                    return Err(Error::invalid(format!(
                        "moe_experts {what} scales: expected {want:?}, got {:?}",
                        s.shape
                    )));
                }
            }
        }
        Ok(vec![TensorDesc::new(self.out, [t, h])])
    }
}
