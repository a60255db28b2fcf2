use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::arity;
use crate::op::OpContract;
use crate::TensorDesc;

/// Next-token choice per row: argmax (ties → lower id) when `temperature <`
/// [`Sample::GREEDY_BELOW`] or the highest logit is ±∞, else (logits − max)/T → min-p → top-k →
/// softmax → top-p → inverse CDF at `uniform[b]` (docs/numerics.md §Sampling) — logits F32 [B, V],
/// uniform F32 [B] → ids U32 [B]. Only the first `valid_vocab` ids compete.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Below [`Sample::GREEDY_BELOW`] (0 included) the op is greedy.
    pub temperature: f32,
    /// Keep the k most likely ids (0 = all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p (1.0 = all).
    pub top_p: f32,
    /// Drop ids whose probability (softmax over every candidate) is below `min_p` times the
    /// highest one, before top-k (0 = none; in [0, 1]). Greedy ignores it.
    pub min_p: f32,
    /// Ids at or above this never win (the tokenizer defines fewer ids than the model's vocab).
    pub valid_vocab: usize,
}

impl Sample {
    /// Temperatures below this are greedy: `1e-5` rounded to f32, bits `0x3727C5AC`
    /// (9.99999974737875e-6). Any smaller temperature leaves the runner-up logit a probability
    /// of at most `exp(−Δ/1e-5)`, i.e. exactly 0 in f32 for every gap Δ ≥ 1.04e-3, so the limit is
    /// greedy already; making it the rule also settles ties (lower id) and keeps the scaled
    /// logits far from overflow.
    pub const GREEDY_BELOW: f32 = 1e-5;

    /// Whether this op picks the argmax whatever the logits (it may also do so for rows whose
    /// highest logit is ±∞).
    pub fn is_greedy(&self) -> bool {
        self.temperature < Self::GREEDY_BELOW
    }
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
            && (0.0..=1.0).contains(&self.min_p)
            && self.valid_vocab > 0
            && self.valid_vocab <= logits.shape[1];
        if !ok {
            return Err(Error::invalid(format!(
                "sample: temperature {} top_p {} min_p {} valid_vocab {} (vocab {})",
                self.temperature, self.top_p, self.min_p, self.valid_vocab, logits.shape[1]
            )));
        }
        Ok(vec![TensorDesc::new(DType::U32, [logits.shape[0]])])
    }
}
