use concord_core::{Error, Result};
use serde::Serialize;

use super::check::arity;
use crate::op::OpContract;
use crate::TensorDesc;

/// Copy of columns `start..start+len` of every row — x [T, C] → [T, len], same dtype.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SliceColumns {
    /// First column.
    pub start: usize,
    /// Number of columns.
    pub len: usize,
}

impl OpContract for SliceColumns {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [x] = arity("slice_columns", inputs, 1)? else {
            unreachable!()
        };
        x.expect_rank(2, "slice_columns x")?;
        if self.start + self.len > x.shape[1] {
            return Err(Error::invalid(format!(
                "slice_columns: {}..{} outside {} columns",
                self.start,
                self.start + self.len,
                x.shape[1]
            )));
        }
        Ok(vec![TensorDesc::new(x.dtype, [x.shape[0], self.len])])
    }
}
