//! How the model is spread over the devices: world = TP × EP ranks, one per device.
//!
//! Tensor parallelism (TP) splits the attention heads (`q_b_proj`/`q_proj` and `kv_b_proj` by
//! output rows, `o_proj` by its head columns) and the intermediate dimension of the dense MLP
//! and the shared experts; expert parallelism (EP) gives each rank `n_routed_experts / EP`
//! whole routed experts (replicated across the TP replicas). Everything else — embedding,
//! output head, norms, router, `q_a_proj`/`kv_a_proj_with_mqa` and the latent cache — is
//! replicated on every rank. With the experts on the host, every routed expert lives once in
//! host RAM and EP is 1.

use concord_core::{Error, Result};

use crate::config::ModelConfig;

/// Where the routed experts live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpertsOn {
    /// Sharded over the EP ranks' devices.
    Device,
    /// Every routed expert once in host RAM, computed there (`--experts-on host`).
    Host,
}

/// A resolved layout: `tensor_parallel × expert_parallel` ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// TP degree: ranks that split heads and intermediate dimensions.
    pub tensor_parallel: usize,
    /// EP degree: ranks that split the routed experts.
    pub expert_parallel: usize,
    /// Where the routed experts live.
    pub experts_on: ExpertsOn,
}

impl Layout {
    /// Ranks in the world (one per device).
    pub fn world(&self) -> usize {
        self.tensor_parallel * self.expert_parallel
    }

    /// Fills in what the user left out and checks that the layout fits `devices` and divides
    /// the model. Defaults: TP 1 and EP = devices (experts sharded over every device); with
    /// the experts on the host, or a model without routed experts, EP 1 and TP = devices.
    pub fn resolve(
        cfg: &ModelConfig,
        devices: usize,
        tensor_parallel: Option<usize>,
        expert_parallel: Option<usize>,
        experts_on: ExpertsOn,
    ) -> Result<Layout> {
        if tensor_parallel == Some(0) || expert_parallel == Some(0) {
            return Err(Error::invalid(
                "--tensor-parallel and --expert-parallel must be at least 1",
            ));
        }
        let experts_elsewhere = experts_on == ExpertsOn::Host || cfg.n_routed_experts == 0;
        let (tp, ep) = match (tensor_parallel, expert_parallel) {
            (Some(tp), Some(ep)) => (tp, ep),
            (None, Some(ep)) => (devices / ep, ep),
            (Some(tp), None) if experts_elsewhere => (tp, 1),
            (Some(tp), None) => (tp, devices / tp),
            (None, None) if experts_elsewhere => (devices, 1),
            (None, None) => (1, devices),
        };
        let layout = Layout {
            tensor_parallel: tp.max(1),
            expert_parallel: ep.max(1),
            experts_on,
        };
        if layout.world() != devices {
            return Err(Error::invalid(format!(
                "layout does not match --devices: tensor-parallel {} × expert-parallel {} = {} ranks, but {devices} device(s) were given (one rank per device)",
                layout.tensor_parallel,
                layout.expert_parallel,
                layout.world()
            )));
        }
        layout.check_divides(cfg)?;
        Ok(layout)
    }

    /// Every split must be exact: TP divides the heads, the dense intermediate size and the
    /// shared experts' intermediate size; EP divides the routed experts.
    fn check_divides(&self, cfg: &ModelConfig) -> Result<()> {
        let (tp, ep) = (self.tensor_parallel, self.expert_parallel);
        let mut problems = Vec::new();
        if cfg.num_attention_heads % tp != 0 {
            problems.push(format!(
                "num_attention_heads = {} is not divisible by tensor-parallel {tp}",
                cfg.num_attention_heads
            ));
        }
        let layers = cfg.num_hidden_layers + cfg.num_nextn_predict_layers;
        let any_dense = (0..layers).any(|l| !cfg.is_moe_layer(l));
        if any_dense && cfg.intermediate_size % tp != 0 {
            problems.push(format!(
                "intermediate_size = {} (dense MLP) is not divisible by tensor-parallel {tp}",
                cfg.intermediate_size
            ));
        }
        let shared = cfg.moe_intermediate_size * cfg.n_shared_experts;
        if cfg.n_routed_experts > 0 && shared % tp != 0 {
            problems.push(format!(
                "the shared experts' intermediate size moe_intermediate_size × n_shared_experts = {shared} is not divisible by tensor-parallel {tp}"
            ));
        }
        if ep > 1 && self.experts_on == ExpertsOn::Host {
            problems.push(format!(
                "expert-parallel {ep} with --experts-on host: every routed expert is in host RAM once, so expert parallelism must be 1 (use --tensor-parallel to spread the rest)"
            ));
        } else if ep > 1 && cfg.n_routed_experts == 0 {
            problems.push(format!(
                "expert-parallel {ep}: the model has no routed experts (use --tensor-parallel)"
            ));
        } else if cfg.n_routed_experts % ep != 0 {
            problems.push(format!(
                "n_routed_experts = {} is not divisible by expert-parallel {ep}",
                cfg.n_routed_experts
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "layout tensor-parallel {tp} × expert-parallel {ep} does not divide the model:\n  - {}",
                problems.join("\n  - ")
            )))
        }
    }
}
