use concord_core::{DType, Result};
use serde::Serialize;

use super::check::{activation_out, arity, ACTIVATION, DENSE_WEIGHT};
use crate::op::OpContract;
use crate::TensorDesc;

/// `out = A(w · A(x · (1/sqrt(mean(x²) + eps))))` per row — x [T, d], w [d] → [T, d].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RmsNorm {
    /// Added to the mean square before the square root.
    pub eps: f32,
    /// Output (activation) dtype.
    pub out: DType,
}

impl OpContract for RmsNorm {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [x, w] = arity("rms_norm", inputs, 2)? else {
            unreachable!()
        };
        activation_out("rms_norm", self.out)?;
        x.expect_rank(2, "rms_norm x")?
            .expect_dtype(ACTIVATION, "rms_norm x")?;
        w.expect_rank(1, "rms_norm weight")?
            .expect_dtype(DENSE_WEIGHT, "rms_norm weight")?
            .expect_dim(0, x.shape[1], "rms_norm weight")?;
        Ok(vec![TensorDesc::new(self.out, x.shape.clone())])
    }
}
