//! Dense SwiGLU MLP and DeepSeekMoE (router, routed experts, shared experts).

use concord_core::DType;
use concord_core::Result;
use concord_loader::{ScoringFunc, TopkMethod};
use concord_ops::{
    Add, ExpertWeights, Matmul, MoeExperts, MoeRoute, RouterMethod, RouterScoring, Swiglu,
    TensorArg,
};

use super::weights::{ExpertStacks, Ffn, MlpWeights, MoeWeights};
use super::Model;
use crate::exec::{DeviceTensor, Executor};

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
        if let Some(host) = &self.host_experts {
            return self.moe_with_host_experts(host, x, &route[0], &route[1], w);
        }
        let routed = match &self.parallel {
            Some(shard) => {
                self.routed_experts_sharded(shard, x, &route[0], &route[1], &w.experts)?
            }
            None => {
                self.routed_experts(&self.exec, x, &route[0].arg(), &route[1].arg(), &w.experts)?
            }
        };
        match &w.shared {
            Some(shared) => {
                let sh = self.mlp(x, shared)?;
                self.add_shared(&routed, &sh)
            }
            None => Ok(routed),
        }
    }

    /// `MoeExperts` on `exec` (the model's executor, or the host's for `--experts-on host`):
    /// x [T,H], ids [T,K], weights [T,K] and the stacks all live on its backend.
    pub(crate) fn routed_experts(
        &self,
        exec: &Executor,
        x: &TensorArg,
        ids: &TensorArg,
        weights: &TensorArg,
        s: &ExpertStacks,
    ) -> Result<DeviceTensor> {
        let mut inputs = vec![x.clone(), ids.clone(), weights.clone()];
        let storage = match &s.scales {
            Some(([gs, us, ds], block)) => {
                inputs.extend([
                    s.gate.arg(),
                    gs.arg(),
                    s.up.arg(),
                    us.arg(),
                    s.down.arg(),
                    ds.arg(),
                ]);
                ExpertWeights::BlockFp8 {
                    block: *block,
                    scale_fmt: self.cfg.act_scale_format(),
                }
            }
            None => {
                inputs.extend([s.gate.arg(), s.up.arg(), s.down.arg()]);
                ExpertWeights::Dense
            }
        };
        exec.apply1(
            MoeExperts {
                weights: storage,
                out: self.activation(),
            },
            &inputs,
        )
    }

    /// routed + shared, in that order (the contract's order of the layer's sum).
    pub(crate) fn add_shared(
        &self,
        routed: &DeviceTensor,
        shared: &DeviceTensor,
    ) -> Result<DeviceTensor> {
        self.exec.apply1(
            Add {
                out: self.activation(),
            },
            &[routed.arg(), shared.arg()],
        )
    }
}
