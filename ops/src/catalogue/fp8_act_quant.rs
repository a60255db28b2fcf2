use concord_core::{ActScaleFormat, DType, Result};
use serde::Serialize;

use super::check::{arity, ceil_div, ACTIVATION};
use crate::op::OpContract;
use crate::TensorDesc;

/// Columns per activation quantization group (DeepSeek's `act_quant` block size).
pub const FP8_ACT_BLOCK: usize = 128;

/// Per token, per 128 columns: `s = fmt(max(amax, 1e-4)/448)`, `q = e4m3_satfinite(x/s)` —
/// x [M, K] → (q F8_E4M3 [M, K], s F32 [M, ⌈K/128⌉]); a partial last block uses its own amax.
/// `fmt` is the identity, or the rounding up to a power of two of `ue8m0` (DeepSeek-V3.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Fp8ActQuant {
    /// How each block's scale is stored (`quantization_config.scale_fmt`).
    pub scale_fmt: ActScaleFormat,
}

impl OpContract for Fp8ActQuant {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [x] = arity("fp8_act_quant", inputs, 1)? else {
            unreachable!()
        };
        x.expect_rank(2, "fp8_act_quant x")?
            .expect_dtype(ACTIVATION, "fp8_act_quant x")?;
        let (m, k) = (x.shape[0], x.shape[1]);
        Ok(vec![
            TensorDesc::new(DType::F8E4M3, [m, k]),
            TensorDesc::new(DType::F32, [m, ceil_div(k, FP8_ACT_BLOCK)]),
        ])
    }
}
