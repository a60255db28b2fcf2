use concord_core::{DType, Result};
use serde::Serialize;

use super::check::{activation_out, arity, DENSE_WEIGHT};
use crate::op::OpContract;
use crate::TensorDesc;

/// `out[t] = A(table[ids[t]])` — ids U32 [T], table [V, H] F32|BF16 → [T, H]. Ids ≥ V are an error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Embedding {
    /// Output (activation) dtype.
    pub out: DType,
}

impl OpContract for Embedding {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [ids, table] = arity("embedding", inputs, 2)? else {
            unreachable!()
        };
        activation_out("embedding", self.out)?;
        ids.expect_rank(1, "embedding ids")?
            .expect_dtype(&[DType::U32], "embedding ids")?;
        table
            .expect_rank(2, "embedding table")?
            .expect_dtype(DENSE_WEIGHT, "embedding table")?;
        Ok(vec![TensorDesc::new(
            self.out,
            [ids.shape[0], table.shape[1]],
        )])
    }
}
