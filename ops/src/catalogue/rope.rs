use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::{activation_out, arity, ACTIVATION};
use crate::op::OpContract;
use crate::TensorDesc;

/// Interleaved-pair rotation of columns `offset..offset+dim` of every head:
/// `o[2i] = A(x[2i]·c − x[2i+1]·s)`, `o[2i+1] = A(x[2i]·s + x[2i+1]·c)` with host tables at
/// `positions[t]` — x [T, H, W], cos/sin F32 [P, dim/2], positions U32 [T] → [T, H, dim].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rope {
    /// First rotated column inside each head's row of width W.
    pub offset: usize,
    /// Rotated width (qk_rope_head_dim), even.
    pub dim: usize,
    /// Output (activation) dtype.
    pub out: DType,
}

impl OpContract for Rope {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [x, cos, sin, pos] = arity("rope", inputs, 4)? else {
            unreachable!()
        };
        activation_out("rope", self.out)?;
        x.expect_rank(3, "rope x")?
            .expect_dtype(ACTIVATION, "rope x")?;
        if !self.dim.is_multiple_of(2) || self.offset + self.dim > x.shape[2] {
            return Err(Error::invalid(format!(
                "rope: columns {}..{} do not fit rows of width {} (or odd width)",
                self.offset,
                self.offset + self.dim,
                x.shape[2]
            )));
        }
        for (t, what) in [(cos, "rope cos"), (sin, "rope sin")] {
            t.expect_rank(2, what)?
                .expect_dtype(&[DType::F32], what)?
                .expect_dim(1, self.dim / 2, what)?;
        }
        pos.expect_rank(1, "rope positions")?
            .expect_dtype(&[DType::U32], "rope positions")?
            .expect_dim(0, x.shape[0], "rope positions")?;
        Ok(vec![TensorDesc::new(
            self.out,
            [x.shape[0], x.shape[1], self.dim],
        )])
    }
}
