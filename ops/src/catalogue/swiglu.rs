use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::{activation_out, arity, ACTIVATION};
use crate::op::OpContract;
use crate::TensorDesc;

/// `out = A(silu(g) · u)` elementwise — g, u [T, I] → [T, I].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Swiglu {
    /// Output (activation) dtype.
    pub out: DType,
}

impl OpContract for Swiglu {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [g, u] = arity("swiglu", inputs, 2)? else {
            unreachable!()
        };
        activation_out("swiglu", self.out)?;
        g.expect_rank(2, "swiglu gate")?
            .expect_dtype(ACTIVATION, "swiglu gate")?;
        u.expect_dtype(ACTIVATION, "swiglu up")?;
        if g.shape != u.shape {
            return Err(Error::invalid(format!(
                "swiglu: gate {:?} vs up {:?}",
                g.shape, u.shape
            )));
        }
        Ok(vec![TensorDesc::new(self.out, g.shape.clone())])
    }
}
