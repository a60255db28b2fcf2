//! Dense SwiGLU MLP and DeepSeekMoE (router, routed experts, shared experts).

use concord_core::DType;
use concord_core::Result;
use concord_loader::{ScoringFunc, TopkMethod};
use concord_ops::{Add, Matmul, MoeRoute, RouterMethod, RouterScoring, Swiglu, TensorArg};

use super::weights::{Ffn, MlpWeights, MoeWeights};
use super::Model;
use crate::exec::DeviceTensor;

impl Model {
    /// `down(silu(gate(x)) ⊙ up(x))`. Under tensor parallelism this rank holds a slice of
    /// each projection's output rows: its columns of `h` and of the output are gathered from
    /// the tensor group (each element computed whole on one rank, nothing summed across ranks).
    pub(crate) fn mlp(&self, x: &TensorArg, w: &MlpWeights) -> Result<DeviceTensor> {
        let g = self.linear(x, &w.gate)?;
        let u = self.linear(x, &w.up)?;
        let h = self.exec.apply1(
            Swiglu {
                out: self.activation(),
            },
            &[g.arg(), u.arg()],
        )?;
        let h = self.gather_columns(h)?;
        let y = self.linear(&h.arg(), &w.down)?;
        self.gather_columns(y)
    }

    pub(crate) fn feed_forward(&self, x: &TensorArg, ffn: &Ffn) -> Result<DeviceTensor> {
        match ffn {
            Ffn::Dense(w) => self.mlp(x, w),
            Ffn::Moe(w) => self.moe(x, w),
        }
    }

    fn router(&self) -> MoeRoute {
        let c = &self.cfg;
        MoeRoute {
            scoring: match c.scoring_func {
                ScoringFunc::Sigmoid => RouterScoring::Sigmoid,
                ScoringFunc::Softmax => RouterScoring::Softmax,
            },
            method: match c.topk_method {
                TopkMethod::NoauxTc => RouterMethod::NoauxTc,
                TopkMethod::Greedy => RouterMethod::Greedy,
                TopkMethod::GroupLimitedGreedy => RouterMethod::GroupLimitedGreedy,
            },
            n_group: c.n_group.max(1),
            topk_group: c.topk_group.max(1),
            top_k: c.num_experts_per_tok,
            norm_topk_prob: c.norm_topk_prob,
            routed_scaling_factor: c.routed_scaling_factor,
        }
    }

    fn moe(&self, x: &TensorArg, w: &MoeWeights) -> Result<DeviceTensor> {
        let logits = self
            .exec
            .apply1(Matmul { out: DType::F32 }, &[x.clone(), w.router.arg()])?;
        let mut route_in = vec![logits.arg()];
        if let Some(b) = &w.bias {
            route_in.push(b.arg());
        }
        let route = self.exec.apply(self.router(), &route_in)?;
        let routed = match &self.parallel {
            Some(shard) => {
                self.routed_experts_sharded(shard, x, &route[0], &route[1], &w.experts)?
            }
            None => self.moe_experts_call(x, &route[0], &route[1], &w.experts)?,
        };
        match &w.shared {
            Some(shared) => {
                let sh = self.mlp(x, shared)?;
                self.exec.apply1(
                    Add {
                        out: self.activation(),
                    },
                    &[routed.arg(), sh.arg()],
                )
            }
            None => Ok(routed),
        }
    }
}
