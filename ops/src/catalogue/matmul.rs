use concord_core::{DType, Result};
use serde::Serialize;

use super::check::{activation_out, arity, ACTIVATION, DENSE_WEIGHT};
use crate::op::OpContract;
use crate::TensorDesc;

/// `y[m, n] = A(dot(x[m, :], w[n, :]))`, canonical dot — x [M, K], w [N, K] F32|BF16 → [M, N].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matmul {
    /// Output dtype (F32 for router logits and lm_head).
    pub out: DType,
}

impl OpContract for Matmul {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [x, w] = arity("matmul", inputs, 2)? else {
            unreachable!()
        };
        activation_out("matmul", self.out)?;
        x.expect_rank(2, "matmul x")?
            .expect_dtype(ACTIVATION, "matmul x")?;
        w.expect_rank(2, "matmul w")?
            .expect_dtype(DENSE_WEIGHT, "matmul w")?
            .expect_dim(1, x.shape[1], "matmul w (in_features)")?;
        Ok(vec![TensorDesc::new(self.out, [x.shape[0], w.shape[0]])])
    }
}
