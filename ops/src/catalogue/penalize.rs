use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::arity;
use crate::op::OpContract;
use crate::TensorDesc;

/// The repetition, frequency and presence penalties (vLLM's, docs/numerics.md §Sampling) —
/// logits F32 [B, V], seen U32 [B, K, 3] → penalised logits F32 [B, V].
///
/// Each row of `seen` lists up to K entries `(id, output_count, in_prompt)`, applied in
/// order to a copy of the row's logits; an entry whose id is ≥ V is padding and changes
/// nothing. For an entry with `output_count c > 0` or `in_prompt ≠ 0`, `l = logits[id]`
/// becomes `l / r` if `l > 0`, else `l · r`; then, if `c > 0`, `l = (l − f·c) − p` (`c`
/// converted to f32, each operation rounded, no fused multiply-add). The host lists each id
/// once; a repeated id is penalised again, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Penalize {
    /// `r` (1 = none; > 0): divides positive logits and multiplies the others, for every id
    /// in the prompt or the output.
    pub repetition: f32,
    /// `f` (0 = none): subtracted once per occurrence in the output.
    pub frequency: f32,
    /// `p` (0 = none): subtracted once for an id that occurs in the output.
    pub presence: f32,
}

impl Penalize {
    /// Whether the op changes no logit whatever the tokens seen.
    pub fn is_neutral(&self) -> bool {
        self.repetition == 1.0 && self.frequency == 0.0 && self.presence == 0.0
    }
}

impl OpContract for Penalize {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [logits, seen] = arity("penalize", inputs, 2)? else {
            unreachable!()
        };
        logits
            .expect_rank(2, "penalize logits")?
            .expect_dtype(&[DType::F32], "penalize logits")?;
        seen.expect_rank(3, "penalize seen")?
            .expect_dtype(&[DType::U32], "penalize seen")?
            .expect_dim(0, logits.shape[0], "penalize seen")?
            .expect_dim(2, 3, "penalize seen")?;
        let ok = self.repetition > 0.0
            && self.repetition.is_finite()
            && self.frequency.is_finite()
            && self.presence.is_finite();
        if !ok {
            return Err(Error::invalid(format!(
                "penalize: repetition {} (must be finite and > 0), frequency {} and presence {} \
                 (must be finite)",
                self.repetition, self.frequency, self.presence
            )));
        }
        Ok(vec![logits.clone()])
    }
}
