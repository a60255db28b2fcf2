use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::arity;
use crate::op::OpContract;
use crate::TensorDesc;

/// Next-token choice per row: argmax (ties → lower id) when `temperature == 0`, else
/// logits/T → top-k → softmax → top-p → inverse CDF at `uniform[b]` (docs/numerics.md §Sampling)
/// — logits F32 [B, V], uniform F32 [B] → ids U32 [B]. Only the first `valid_vocab` ids compete.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// 0 means greedy.
    pub temperature: f32,
    /// Keep the k most likely ids (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p (1.0 = all).
    pub top_p: f32,
    /// Ids at or above this never win (the tokenizer defines fewer ids than the model's vocab).
    pub valid_vocab: usize,
}

impl OpContract for Sample {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [logits, uniform] = arity("sample", inputs, 2)? else {
            unreachable!()
        };
        logits
            .expect_rank(2, "sample logits")?
            .expect_dtype(&[DType::F32], "sample logits")?;
        uniform
            .expect_rank(1, "sample uniform")?
            .expect_dtype(&[DType::F32], "sample uniform")?
            .expect_dim(0, logits.shape[0], "sample uniform")?;
        let ok = self.temperature >= 0.0
            && self.temperature.is_finite()
            && self.top_p > 0.0
            && self.top_p <= 1.0
            && self.valid_vocab > 0
            && self.valid_vocab <= logits.shape[1];
        if !ok {
            return Err(Error::invalid(format!(
                "sample: temperature {} top_p {} valid_vocab {} (vocab {})",
                self.temperature, self.top_p, self.valid_vocab, logits.shape[1]
            )));
        }
        Ok(vec![TensorDesc::new(DType::U32, [logits.shape[0]])])
    }
}
