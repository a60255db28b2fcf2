use concord_core::{DType, Result};
use serde::Serialize;

use super::check::arity;
use crate::op::OpContract;
use crate::TensorDesc;

/// `dst[slots[t]] = src[t]` (KV-cache append); other rows of dst are left as they are —
/// src [T, C], slots U32 [T] → dst [S, C] (the output's own shape; slots < S).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScatterRows;

impl OpContract for ScatterRows {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [src, slots] = arity("scatter_rows", inputs, 2)? else {
            unreachable!()
        };
        src.expect_rank(2, "scatter_rows src")?;
        slots
            .expect_rank(1, "scatter_rows slots")?
            .expect_dtype(&[DType::U32], "scatter_rows slots")?
            .expect_dim(0, src.shape[0], "scatter_rows slots")?;
        // The destination's row count is the caller's; only the row width is implied.
        Ok(vec![TensorDesc::new(src.dtype, [0, src.shape[1]])])
    }
}
