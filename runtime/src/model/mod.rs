//! The DeepSeek-V3 model graph: weights on a backend, and the forward pass over a batch of
//! sequences. Nothing here names a vendor: every computation is an op of the catalogue.

mod attention;
mod expert_offload;
mod feed_forward;
mod forward;
mod mtp;
mod parallel;
mod weight_stream;
mod weights;

use std::path::Path;
use std::sync::Arc;

use concord_core::{DType, Error, Result};
use concord_loader::{Checkpoint, ModelConfig};
use concord_ops::{Backend, TensorArg};

pub use expert_offload::ExpertPlacement;
pub(crate) use forward::MlaForm;
pub use forward::{BatchLogits, LogitRows};
pub use mtp::{greedy_token, is_identical_copy, main_head_name, MtpWeights};
pub use parallel::ParallelLayout;
pub use weights::{Ffn, Linear, ModelWeights};

use crate::exec::{DeviceTensor, Executor};
use crate::kv_cache::KvCache;
use crate::kv_pool::KvPool;
use crate::rope_table::RopeTable;
use crate::Precision;

/// Options for loading a model.
#[derive(Default)]
pub struct LoadOptions {
    /// Compute precision; `None` means the checkpoint's native one (fp8 for FP8 checkpoints,
    /// bf16 otherwise).
    pub precision: Option<Precision>,
    /// Longest sequence the RoPE tables cover; `None` = max_position_embeddings, capped at
    /// `DEFAULT_MAX_POSITIONS` = 2^18 (docs/limits.md).
    pub max_positions: Option<usize>,
    /// Also load the Multi-Token Prediction module (`model.layers.{num_hidden_layers}`), for
    /// `forward_with_mtp` and speculative decoding. An error when the config declares none
    /// (`num_nextn_predict_layers = 0`) or its tensors are missing or mis-shaped.
    pub mtp: bool,
    /// Where the routed experts live and run: `Host` keeps them in host memory and runs them
    /// on the CPU backend, everything else on the model's backend (expert_offload.rs);
    /// bit-identical to `Device` in exact mode.
    pub experts_on: ExpertPlacement,
    /// Spread the model over several ranks (expert and tensor parallelism); `None` = this
    /// process holds the whole model. Every rank loads only its shard and must call the same
    /// methods with the same arguments (the collectives pair them up); results are
    /// bit-identical to one rank.
    pub parallel: Option<ParallelLayout>,
}

/// Positions the RoPE tables cover when [`LoadOptions::max_positions`] is not given: the
/// config's `max_position_embeddings`, but at most 2^18 (every DeepSeek release advertises
/// ≤ 163 840). The tables are built eagerly, so sizing them by an untrusted config field alone
/// could demand gigabytes for a context nobody asked for; longer contexts are requested
/// explicitly through `max_positions` (its tables are allocated fallibly).
pub const DEFAULT_MAX_POSITIONS: usize = 1 << 18;

/// A loaded model, ready to run on its backend.
pub struct Model {
    pub(crate) cfg: ModelConfig,
    pub(crate) exec: Executor,
    pub(crate) weights: ModelWeights,
    pub(crate) mtp: Option<MtpWeights>,
    pub(crate) precision: Precision,
    pub(crate) rope_cos: DeviceTensor,
    pub(crate) rope_sin: DeviceTensor,
    pub(crate) max_positions: usize,
    /// `--experts-on host` on a non-CPU backend: the CPU executor holding and running the
    /// routed experts.
    pub(crate) host_experts: Option<Executor>,
    /// This rank's shard when the model is spread over several ranks.
    pub(crate) parallel: Option<parallel::Shard>,
}

/// A sequence being processed: its latent cache and how many tokens it holds.
pub struct Sequence {
    pub(crate) cache: KvCache,
}

impl Sequence {
    /// Tokens processed so far.
    pub fn len(&self) -> usize {
        self.cache.len()
    }
    /// True before any token.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
    /// Drops cached tokens after `len` (a paged sequence gives back the blocks it no longer
    /// needs).
    pub fn truncate(&mut self, len: usize) {
        self.cache.truncate(len)
    }

    /// On an empty paged sequence: takes over the pool's cached blocks holding `prompt`'s
    /// leading full blocks, so only the rest of the prompt needs a forward pass; returns how
    /// many tokens they cover (0 when none match or the sequence has its own cache). Feed
    /// `prompt[reused..]` next: the results are bit-identical to feeding the whole prompt.
    pub fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        self.cache.reuse_prefix(prompt)
    }

    /// Cache blocks a paged sequence must still take from its pool to hold `tokens` tokens
    /// (0 for a sequence with its own cache).
    pub fn blocks_missing(&self, tokens: usize) -> usize {
        self.cache.blocks_missing(tokens)
    }
}

thread_local! {
    /// Set while this thread runs a pass handed to [`Model::hosted`].
    static IN_HOSTED_PASS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as inside a hosted pass until dropped (also when the pass panics).
struct HostedPass {
    was: bool,
}

impl HostedPass {
    fn enter() -> HostedPass {
        HostedPass {
            was: IN_HOSTED_PASS.replace(true),
        }
    }
}

impl Drop for HostedPass {
    fn drop(&mut self) {
        IN_HOSTED_PASS.set(self.was);
    }
}

/// The precision a checkpoint runs at by default.
pub fn native_precision(cfg: &ModelConfig) -> Precision {
    match &cfg.quantization {
        Some(q) if q.quant_method == "fp8" => Precision::Fp8,
        _ => Precision::Bf16,
    }
}

impl Model {
    /// Loads `dir` onto `backend`; `progress(layers_done, layers_total)` returns false to cancel.
    pub fn load(
        dir: &Path,
        backend: Arc<dyn Backend>,
        options: &LoadOptions,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<Model> {
        let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
        cfg.validate()?;
        if options.mtp && cfg.num_nextn_predict_layers == 0 {
            return Err(Error::invalid(format!(
                "{} has no MTP module: num_nextn_predict_layers is 0 in its config.json \
                 (speculative decoding with MTP and `logits --mtp` need one)",
                dir.display()
            )));
        }
        let ckpt = Checkpoint::open(dir)?;
        concord_loader::validate_checkpoint(&cfg, &ckpt, options.mtp)?;
        let precision = options.precision.unwrap_or_else(|| native_precision(&cfg));
        if options.parallel.is_some() && options.experts_on == ExpertPlacement::Host {
            return Err(Error::invalid(
                "--experts-on host with a parallel layout is not supported yet: each rank would \
                 need its own shard of the host experts",
            ));
        }
        let host_experts = expert_offload::host_executor(&backend, options.experts_on)?;
        let parallel = options
            .parallel
            .as_ref()
            .map(|layout| layout.shard(&cfg))
            .transpose()?;
        let exec = Executor::new(backend);
        tracing::info!(
            layers = cfg.num_hidden_layers,
            hidden = cfg.hidden_size,
            experts = cfg.n_routed_experts,
            %precision,
            backend = exec.backend().info().name,
            layout = ?options.parallel,
            "loading model"
        );
        let loader = weights::WeightLoader {
            cfg: &cfg,
            ckpt: &ckpt,
            exec: &exec,
            experts_exec: host_experts.as_ref().unwrap_or(&exec),
            precision,
            shard: parallel.as_ref(),
        };
        let loaded = loader.load(progress).and_then(|weights| {
            let mtp = if options.mtp {
                Some(loader.mtp()?)
            } else {
                None
            };
            Ok((weights, mtp))
        });
        let (weights, mtp) = match &parallel {
            Some(shard) => shard.agree(loaded, "loading their shard")?,
            None => loaded?,
        };
        let max_positions = options
            .max_positions
            .unwrap_or(cfg.max_position_embeddings.min(DEFAULT_MAX_POSITIONS))
            .max(1);
        let table = RopeTable::new(&cfg, max_positions)?;
        let rope_cos = exec.upload_f32(&[table.positions, table.pairs], &table.cos)?;
        let rope_sin = exec.upload_f32(&[table.positions, table.pairs], &table.sin)?;
        let model = Model {
            cfg,
            exec,
            weights,
            mtp,
            precision,
            rope_cos,
            rope_sin,
            max_positions,
            host_experts,
            parallel,
        };
        if model.host_experts.is_some() {
            let host = model.host_weight_bytes();
            let mib = |b: usize| b as f64 / f64::from(1 << 20);
            tracing::info!(
                host_mib = mib(host),
                device_mib = mib(model.weight_bytes() - host),
                backend = model.exec.backend().info().name,
                "--experts-on host: routed experts in host RAM (run on the cpu backend), the \
                 other weights on the backend"
            );
        }
        Ok(model)
    }

    /// Starts timing every op launch and the executor's work around launches (uploads,
    /// output allocation, read-back), from a fresh tally: `concord bench --profile`. Off by
    /// default, and free while off (no clock is read).
    pub fn profile_start(&self) {
        self.exec.profile_start();
        if let Some(host) = &self.host_experts {
            host.profile_start();
        }
    }

    /// Stops timing and returns the tally since [`Model::profile_start`] (the host experts'
    /// executor's included).
    pub fn profile_stop(&self) -> crate::OpProfile {
        let mut tallies = vec![self.exec.profile_tally()];
        if let Some(host) = &self.host_experts {
            tallies.push(host.profile_tally());
        }
        crate::OpProfile::from_tallies(tallies, self.exec.syncs_when_profiling())
    }

    /// The model's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The precision it runs at.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The backend it runs on.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        self.exec.backend()
    }

    /// Memory held by the weights (the MTP module's included), in bytes (measured from the
    /// allocations): the backend's and, with `--experts-on host`, the host's.
    pub fn weight_bytes(&self) -> usize {
        self.weights.bytes() + self.mtp.as_ref().map_or(0, MtpWeights::bytes)
    }

    /// The part of [`Model::weight_bytes`] in host memory apart from the model's backend: the
    /// routed experts under `--experts-on host` on a non-CPU backend, else 0.
    pub fn host_weight_bytes(&self) -> usize {
        match self.host_experts {
            Some(_) => {
                self.weights.routed_expert_bytes()
                    + self
                        .mtp
                        .as_ref()
                        .map_or(0, |m| m.layer.routed_expert_bytes())
            }
            None => 0,
        }
    }

    /// Where the routed experts run: `Host` only when they are apart from the model's
    /// backend (a CPU model reports `Device`, as `Host` changes nothing there).
    pub fn experts_on(&self) -> ExpertPlacement {
        match self.host_experts {
            Some(_) => ExpertPlacement::Host,
            None => ExpertPlacement::Device,
        }
    }

    /// The loaded MTP module, if any.
    pub fn mtp_module(&self) -> Option<&MtpWeights> {
        self.mtp.as_ref()
    }

    /// Longest sequence supported.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// A fresh, empty sequence with room for `capacity_hint` tokens.
    pub fn new_sequence(&self, capacity_hint: usize) -> Result<Sequence> {
        self.sequence_with_layers(self.cfg.num_hidden_layers, capacity_hint)
    }

    /// A pool of `blocks` cache blocks of `block_size` tokens each for paged sequences (the
    /// serving engine's latent cache): `blocks × block_size × (kv_lora_rank + qk_rope_head_dim)`
    /// values per layer, allocated now.
    pub fn new_kv_pool(&self, blocks: usize, block_size: usize) -> Result<Arc<KvPool>> {
        KvPool::new(
            &self.exec,
            self.cfg.num_hidden_layers,
            self.cfg.kv_lora_rank,
            self.cfg.qk_rope_head_dim,
            self.activation(),
            blocks,
            block_size,
        )
        .map(Arc::new)
    }

    /// Bytes one cache block of `block_size` tokens takes across all layers.
    pub fn kv_block_bytes(&self, block_size: usize) -> usize {
        block_size
            * self.cfg.num_hidden_layers
            * (self.cfg.kv_lora_rank + self.cfg.qk_rope_head_dim)
            * self.activation().size_in_bytes()
    }

    /// A fresh sequence whose cache rows live in `pool` (blocks taken as it grows; a full pool
    /// is an `Unavailable` "kv-cache" error from `forward`). Its results are bit-identical to a
    /// sequence with its own cache.
    pub fn new_paged_sequence(&self, pool: &Arc<KvPool>) -> Result<Sequence> {
        let width = pool.layers.first().map(|l| l.latent.desc.clone());
        if pool.layers.len() != self.cfg.num_hidden_layers
            || width.is_some_and(|d| {
                d.shape[1] != self.cfg.kv_lora_rank || d.dtype != self.activation()
            })
        {
            return Err(Error::invalid(
                "new_paged_sequence: the pool was made for another model",
            ));
        }
        Ok(Sequence {
            cache: KvCache::paged(
                Arc::clone(pool),
                self.cfg.kv_lora_rank,
                self.cfg.qk_rope_head_dim,
                self.activation(),
            ),
        })
    }

    /// An empty sequence whose cache has `layers` layers.
    pub(crate) fn sequence_with_layers(
        &self,
        layers: usize,
        capacity_hint: usize,
    ) -> Result<Sequence> {
        let cache = KvCache::new(
            &self.exec,
            layers,
            self.cfg.kv_lora_rank,
            self.cfg.qk_rope_head_dim,
            self.activation(),
            capacity_hint.clamp(1, self.max_positions),
        )?;
        Ok(Sequence { cache })
    }

    /// Runs `pass` (one forward pass or generation step) through the backend's
    /// [`Backend::host_scope`], where its many launches start cheapest.
    pub(crate) fn hosted<R: Send>(&self, pass: impl FnOnce() -> R + Send) -> R {
        if self.parallel.is_some() {
            // A rank waits inside collectives for the others; on a pool worker it would hold
            // that worker, and ranks sharing one pool (threads of a process) could starve the
            // ranks they wait for. The calling thread waits instead.
            return pass();
        }
        if IN_HOSTED_PASS.get() {
            // Already inside a pass on this thread (a generation step's forward pass): its
            // launches start cheapest here; another scope would only cost a call.
            return pass();
        }
        let mut pass = Some(pass);
        let mut result = None;
        // Profiling: the pass's own time inside the scope, to tell the hand-off apart.
        let profiling = self.exec.profiling();
        let scope_started = profiling.then(std::time::Instant::now);
        let mut inside = std::time::Duration::ZERO;
        self.exec.backend().host_scope(&mut || {
            if let Some(p) = pass.take() {
                let started = profiling.then(std::time::Instant::now);
                let _inside = HostedPass::enter();
                result = Some(p());
                if let Some(t) = started {
                    inside = t.elapsed();
                }
            }
        });
        if let Some(t) = scope_started {
            self.exec.profile_add(
                crate::profile::Activity::Handoff,
                t.elapsed().saturating_sub(inside),
            );
        }
        match (result, pass) {
            (Some(r), _) => r,
            // A backend that did not run the work: run it here.
            (None, Some(p)) => p(),
            (None, None) => unreachable!("the pass ran but left no result"),
        }
    }

    pub(crate) fn activation(&self) -> DType {
        self.precision.activation()
    }

    /// `y = x · Wᵀ` in the layer's storage format.
    pub(crate) fn linear(&self, x: &TensorArg, lin: &Linear) -> Result<DeviceTensor> {
        use concord_ops::{BlockFp8Matmul, Fp8ActQuant, Matmul};
        match lin {
            Linear::Dense(w) => self.exec.apply1(
                Matmul {
                    out: self.activation(),
                },
                &[x.clone(), w.arg()],
            ),
            Linear::BlockFp8 {
                weight,
                scale,
                block,
            } => {
                let quant = Fp8ActQuant {
                    scale_fmt: self.cfg.act_scale_format(),
                };
                let q = self.exec.apply(quant, std::slice::from_ref(x))?;
                self.exec.apply1(
                    BlockFp8Matmul {
                        block: *block,
                        out: self.activation(),
                    },
                    &[q[0].arg(), q[1].arg(), weight.arg(), scale.arg()],
                )
            }
        }
    }

    pub(crate) fn check_ids(&self, ids: &[u32]) -> Result<()> {
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= self.cfg.vocab_size) {
            return Err(Error::invalid(format!(
                "token id {bad} is outside the model's vocabulary of {}",
                self.cfg.vocab_size
            )));
        }
        Ok(())
    }
}
