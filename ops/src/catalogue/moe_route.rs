use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::arity;
use crate::op::OpContract;
use crate::TensorDesc;

/// How router logits become scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RouterScoring {
    /// σ(z) per expert (V3).
    Sigmoid,
    /// softmax over all experts (V2).
    Softmax,
}

/// How experts are selected from the scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RouterMethod {
    /// V3: selection on σ + bias, group score = sum of the two best, weights from σ.
    NoauxTc,
    /// Top-K over all scores.
    Greedy,
    /// Group score = best score of the group; top-K inside the kept groups.
    GroupLimitedGreedy,
}

/// Expert selection per token, ties to the lower index — logits F32 [T,E] (+ bias F32 [E] for
/// `NoauxTc`) → (ids U32 [T,K], weights F32 [T,K] already × routed_scaling_factor).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoeRoute {
    /// Score function.
    pub scoring: RouterScoring,
    /// Selection method.
    pub method: RouterMethod,
    /// Expert groups (n_group); experts per group = E / n_group.
    pub n_group: usize,
    /// Groups kept (topk_group).
    pub topk_group: usize,
    /// Experts per token (num_experts_per_tok).
    pub top_k: usize,
    /// Normalise the chosen weights to sum to one (before scaling).
    pub norm_topk_prob: bool,
    /// Final multiplier of the weights.
    pub routed_scaling_factor: f32,
}

impl OpContract for MoeRoute {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let wants_bias = self.method == RouterMethod::NoauxTc;
        let inputs = arity("moe_route", inputs, if wants_bias { 2 } else { 1 })?;
        let logits = &inputs[0];
        logits
            .expect_rank(2, "moe_route logits")?
            .expect_dtype(&[DType::F32], "moe_route logits")?;
        let (t, e) = (logits.shape[0], logits.shape[1]);
        if wants_bias {
            inputs[1]
                .expect_rank(1, "moe_route bias")?
                .expect_dtype(&[DType::F32], "moe_route bias")?
                .expect_dim(0, e, "moe_route bias")?;
        }
        let groups_ok = self.n_group > 0
            && e % self.n_group == 0
            && self.topk_group <= self.n_group
            && self.topk_group > 0;
        let kept = if self.method == RouterMethod::Greedy {
            e
        } else {
            self.topk_group * (e / self.n_group.max(1))
        };
        if !groups_ok || self.top_k == 0 || self.top_k > kept {
            return Err(Error::invalid(format!(
                "moe_route: {e} experts in {} groups keeping {} cannot give top {}",
                self.n_group, self.topk_group, self.top_k
            )));
        }
        if self.method == RouterMethod::NoauxTc
            && (self.scoring != RouterScoring::Sigmoid || e / self.n_group < 2)
        {
            return Err(Error::invalid(
                "moe_route: noaux_tc needs sigmoid scoring and ≥ 2 experts per group",
            ));
        }
        Ok(vec![
            TensorDesc::new(DType::U32, [t, self.top_k]),
            TensorDesc::new(DType::F32, [t, self.top_k]),
        ])
    }
}
