//! Which part of the model one rank holds, and the checks that a layout divides the model.

use std::fmt;
use std::sync::Arc;

use concord_comm::Communicator;
use concord_core::{Error, Result};
use concord_loader::ModelConfig;

/// How a model is spread over the ranks of `comm`: `tensor × expert` ranks, rank `r` being
/// tensor shard `r % tensor` of expert shard `r / tensor`.
///
/// Attention heads, the dense MLPs and the shared experts are split `tensor` ways on their
/// output dimension; routed experts are split `expert` ways in contiguous ranges (shard `j`
/// holds experts `[j·E/expert, (j+1)·E/expert)`). Embedding, norms, router, latent cache and
/// head are replicated, so routing and sampling agree on every rank without a broadcast.
#[derive(Clone)]
pub struct ParallelLayout {
    /// The ranks; its size must be `tensor × expert`.
    pub comm: Arc<dyn Communicator>,
    /// Tensor-parallel degree (≥ 1).
    pub tensor: usize,
    /// Expert-parallel degree (≥ 1).
    pub expert: usize,
}

impl fmt::Debug for ParallelLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParallelLayout")
            .field("comm", &self.comm.describe())
            .field("rank", &self.comm.rank())
            .field("tensor", &self.tensor)
            .field("expert", &self.expert)
            .finish()
    }
}

/// One rank's place in a validated [`ParallelLayout`].
pub(crate) struct Shard {
    pub comm: Arc<dyn Communicator>,
    /// Tensor-parallel degree and this rank's index in its tensor group.
    pub tensor: usize,
    pub tp_index: usize,
    /// Expert-parallel degree and this rank's expert shard.
    pub expert: usize,
    pub ep_index: usize,
}

impl ParallelLayout {
    /// Checks the layout against the communicator and the model, naming the field that does
    /// not divide; returns this rank's shard.
    pub(crate) fn shard(&self, cfg: &ModelConfig) -> Result<Shard> {
        let (tp, ep) = (self.tensor, self.expert);
        if tp == 0 || ep == 0 {
            return Err(Error::invalid(format!(
                "parallel layout: tensor-parallel {tp} × expert-parallel {ep}: both must be at least 1"
            )));
        }
        let size = self.comm.size();
        if tp.checked_mul(ep) != Some(size) {
            return Err(Error::invalid(format!(
                "parallel layout: tensor-parallel {tp} × expert-parallel {ep} needs {} ranks, \
                 the communicator ({}) has {size}",
                tp.saturating_mul(ep),
                self.comm.describe()
            )));
        }
        let divides = |what: &str, value: usize, by: usize, flag: &str| {
            if !value.is_multiple_of(by) {
                Err(Error::invalid(format!(
                    "parallel layout: {flag} {by} does not divide {what} = {value}"
                )))
            } else {
                Ok(())
            }
        };
        let any_moe = (0..cfg.num_hidden_layers).any(|l| cfg.is_moe_layer(l));
        let any_dense = (0..cfg.num_hidden_layers).any(|l| !cfg.is_moe_layer(l));
        if any_moe {
            divides(
                "n_routed_experts",
                cfg.n_routed_experts,
                ep,
                "expert-parallel",
            )?;
        }
        if tp > 1 {
            let flag = "tensor-parallel";
            divides("num_attention_heads", cfg.num_attention_heads, tp, flag)?;
            divides("hidden_size", cfg.hidden_size, tp, flag)?;
            if any_dense {
                divides("intermediate_size", cfg.intermediate_size, tp, flag)?;
            }
            if any_moe && cfg.n_shared_experts > 0 {
                let shared = cfg.moe_intermediate_size * cfg.n_shared_experts;
                divides("moe_intermediate_size × n_shared_experts", shared, tp, flag)?;
            }
        }
        let rank = self.comm.rank();
        Ok(Shard {
            comm: Arc::clone(&self.comm),
            tensor: tp,
            tp_index: rank % tp,
            expert: ep,
            ep_index: rank / tp,
        })
    }
}

impl Shard {
    /// This rank.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// The rank that computes slot `slot` of a token routed to `expert`: the expert's shard,
    /// and within it the tensor replica `slot % tensor` (so no expert output is computed twice).
    pub fn expert_owner(&self, expert: usize, slot: usize, experts: usize) -> usize {
        let per_shard = experts / self.expert;
        (expert / per_shard) * self.tensor + slot % self.tensor
    }

    /// Every rank learns whether every rank succeeded at a step (`what`, e.g. "loading its
    /// shard"): `result` on this rank comes back as is, and a success here becomes an error
    /// naming the ranks that failed, so one rank's error never leaves the others waiting in a
    /// collective until the timeout.
    pub fn agree<T>(&self, result: Result<T>, what: &str) -> Result<T> {
        let size = self.comm.size();
        let mut flags = vec![0u8; size];
        self.comm
            .all_gather_v(&[u8::from(result.is_ok())], &vec![1; size], &mut flags)?;
        let failed: Vec<String> = (0..size)
            .filter(|&r| flags[r] == 0)
            .map(|r| r.to_string())
            .collect();
        match result {
            Ok(_) if !failed.is_empty() => Err(Error::model(format!(
                "rank {} of {size}: rank(s) {} failed {what} (see their errors)",
                self.rank(),
                failed.join(", ")
            ))),
            other => other,
        }
    }

    /// The first routed expert this rank's shard holds, and how many.
    pub fn local_experts(&self, experts: usize) -> (usize, usize) {
        let per_shard = experts / self.expert;
        (self.ep_index * per_shard, per_shard)
    }
}
