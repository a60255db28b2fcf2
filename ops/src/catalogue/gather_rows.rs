use concord_core::{DType, Result};
use serde::Serialize;

use super::check::arity;
use crate::op::OpContract;
use crate::TensorDesc;

/// `dst[t] = src[rows[t]]` (a sequence's rows out of a shared pool; the inverse of
/// `ScatterRows`) — src [S, C] any dtype, rows U32 [T] → [T, C], same dtype, bytes copied
/// exactly. Rows ≥ S are an error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatherRows;

impl OpContract for GatherRows {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [src, rows] = arity("gather_rows", inputs, 2)? else {
            unreachable!()
        };
        src.expect_rank(2, "gather_rows src")?;
        rows.expect_rank(1, "gather_rows rows")?
            .expect_dtype(&[DType::U32], "gather_rows rows")?;
        Ok(vec![TensorDesc::new(
            src.dtype,
            [rows.shape[0], src.shape[1]],
        )])
    }
}
