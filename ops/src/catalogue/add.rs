use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::{activation_out, arity, ACTIVATION};
use crate::op::OpContract;
use crate::TensorDesc;

/// Residual add `out = A(a + b)` elementwise — a, b [T, H] → [T, H].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Add {
    /// Output (activation) dtype.
    pub out: DType,
}

impl OpContract for Add {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [a, b] = arity("add", inputs, 2)? else {
            unreachable!()
        };
        activation_out("add", self.out)?;
        a.expect_dtype(ACTIVATION, "add a")?;
        b.expect_dtype(ACTIVATION, "add b")?;
        if a.shape != b.shape {
            return Err(Error::invalid(format!(
                "add: {:?} vs {:?}",
                a.shape, b.shape
            )));
        }
        Ok(vec![TensorDesc::new(self.out, a.shape.clone())])
    }
}
