//! What every command shares: finding the model, opening the backend, loading with a
//! progress bar, parsing id lists.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use concord_comm::Communicator;
use concord_core::{Error, Result};
use concord_ops::KernelMode;
use concord_runtime::text::Tokenizer;
use concord_runtime::{
    ExpertPlacement, LoadOptions, Model, ParallelLayout, Precision, SpeculativeMtp,
};

/// `--model`, `--backend`, `--precision`: where the model is and how it runs.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Hugging Face model directory (config.json, *.safetensors, tokenizer.json).
    /// Default: the bundled demo model.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Backend to run on: cpu, opencl, cuda, rocm, ascend (`concord backends` lists them).
    #[arg(long, default_value = "cpu", value_name = "NAME")]
    pub backend: String,
    /// f32 (exact upcast), bf16, or fp8 (block-scaled W8A8). Default: the checkpoint's own
    /// (fp8 for FP8 checkpoints, bf16 otherwise).
    #[arg(long, value_name = "P")]
    pub precision: Option<Precision>,
    /// Kernels: exact (bit-identical to the CPU reference on every backend) or fast (tensor
    /// cores and tiled matmuls where the backend has them: cuda, rocm, opencl; checked
    /// against exact within docs/numerics.md's tolerances, still deterministic and
    /// batch-invariant). The cpu backend always runs exact.
    #[arg(long, default_value = "exact", value_name = "MODE")]
    pub mode: KernelMode,
    /// Longest sequence (prompt + generated tokens) to support. Default: the model's
    /// max_position_embeddings, at most 262144 (docs/limits.md).
    #[arg(long, value_name = "N")]
    pub context: Option<usize>,
    /// Where the routed experts live and run: device (with everything else) or host (host
    /// RAM, run by the CPU backend, while attention, dense layers, shared experts, router and
    /// head stay on --backend — for models whose experts do not fit the device). Same bits
    /// either way in exact mode; on --backend cpu both are the same.
    #[arg(long, default_value = "device", value_name = "WHERE")]
    pub experts_on: ExpertPlacement,
    /// Split attention heads, dense MLPs and shared experts over N ranks (each computes whole
    /// output columns, which are gathered: bit-identical to one rank). Launch
    /// tensor × expert ranks with `mpirun -np <N×M> concord …`.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub tensor_parallel: usize,
    /// Shard the routed experts over N ranks (contiguous ranges; each token's expert outputs
    /// are gathered and combined in slot order: bit-identical to one rank).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub expert_parallel: usize,
}

/// Sets up `tracing` on stderr, filtered by CONCORD_LOG (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONCORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The bundled demo model's directory.
pub fn demo_model_dir() -> PathBuf {
    concord_runtime::demo_model_dir()
}

impl ModelArgs {
    /// The model directory, checked to look like one.
    pub fn dir(&self) -> Result<PathBuf> {
        let dir = self.model.clone().unwrap_or_else(demo_model_dir);
        if !dir.join("config.json").is_file() {
            return Err(Error::invalid(format!(
                "{} is not a model directory (no config.json)",
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// Loads the model, with a progress bar when stderr is a terminal.
    pub fn load(&self) -> Result<Model> {
        self.load_with_mtp(false)
    }

    /// Loads the model and, with `mtp`, its Multi-Token Prediction module.
    pub fn load_with_mtp(&self, mtp: bool) -> Result<Model> {
        let dir = self.dir()?;
        if self.context == Some(0) {
            return Err(Error::invalid("--context must be at least 1 token"));
        }
        self.assign_rank_device()?;
        let backend = concord_runtime::open_backend_mode(&self.backend, self.mode)?;
        if backend.info().mode != self.mode {
            tracing::warn!(
                backend = %self.backend,
                "the {} backend has no {} mode; running {}",
                self.backend,
                self.mode,
                backend.info().mode
            );
        }
        let options = LoadOptions {
            precision: self.precision,
            max_positions: self.context,
            mtp,
            experts_on: self.experts_on,
            parallel: self.parallel_layout()?,
        };
        let show_bar = std::io::stderr().is_terminal() && crate::ranks::writes_output();
        let bar = show_bar.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "loading {msg} [{bar:30}] {pos}/{len} layers {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(dir.display().to_string());
            bar
        });
        let mut progress = |done: usize, total: usize| {
            if let Some(b) = &bar {
                b.set_length(total as u64);
                b.set_position(done as u64);
            }
            true
        };
        let model = Model::load(&dir, backend, &options, &mut progress);
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        model
    }

    /// Under a launcher with several ranks, a device backend opens the device of this
    /// process's local rank (the device its NCCL/RCCL/HCCL communicator joins on) unless its
    /// device variable says otherwise.
    fn assign_rank_device(&self) -> Result<()> {
        let device_var = match self.backend.as_str() {
            "cuda" => concord_backend_cuda::DEVICE_ENV,
            "rocm" => concord_backend_rocm::DEVICE_ENV,
            "ascend" => concord_backend_ascend::DEVICE_ENV,
            _ => return Ok(()),
        };
        if crate::ranks::launched().is_some() {
            concord_comm::assign_rank_device(device_var)?;
        }
        Ok(())
    }

    /// The layout of `--tensor-parallel` × `--expert-parallel` over the ranks this process was
    /// launched with (`None` for one process and one rank). The product must equal the number
    /// of ranks.
    pub fn parallel_layout(&self) -> Result<Option<ParallelLayout>> {
        let (tensor, expert) = (self.tensor_parallel, self.expert_parallel);
        if tensor == 0 || expert == 0 {
            return Err(Error::invalid(
                "--tensor-parallel and --expert-parallel must be at least 1",
            ));
        }
        let world = tensor.saturating_mul(expert);
        if world == 1 && crate::ranks::launched().is_none() {
            return Ok(None);
        }
        // NCCL for cuda, RCCL for rocm, MPI otherwise; CONCORD_COMM overrides.
        let comm: Arc<dyn Communicator> = Arc::from(concord_comm::for_backend(
            &self.backend,
            concord_comm::DEFAULT_TIMEOUT,
        )?);
        let size = comm.size();
        if size != world {
            return Err(Error::invalid(format!(
                "--tensor-parallel {tensor} × --expert-parallel {expert} needs {world} ranks, \
                 but this process is one of {size} ({}): launch it with \
                 `mpirun -np {world} concord …`",
                comm.describe()
            )));
        }
        if world == 1 {
            return Ok(None);
        }
        Ok(Some(ParallelLayout {
            comm,
            tensor,
            expert,
        }))
    }

    /// An error when a parallel layout was asked for: `command` runs one process for now.
    pub fn require_one_rank(&self, command: &str) -> Result<()> {
        if self.tensor_parallel * self.expert_parallel > 1 || crate::ranks::launched().is_some() {
            return Err(Error::unsupported(format!(
                "`concord {command}` with --tensor-parallel/--expert-parallel or under mpirun: \
                 not supported yet (use `logits`, `generate` or `bench`)"
            )));
        }
        Ok(())
    }

    /// The tokenizer of the model directory.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        Tokenizer::from_dir(&self.dir()?)
    }
}

/// Speculative decoding methods.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum SpeculativeMethod {
    /// Draft with the model's own Multi-Token Prediction module (`num_nextn_predict_layers`).
    Mtp,
}

/// `--speculative`, `--draft-tokens`: how generation drafts and verifies.
#[derive(Args, Debug, Clone)]
pub struct SpeculativeArgs {
    /// Speculative decoding: `mtp` drafts with the model's MTP module and verifies the drafts
    /// in one forward of the main model. Greedy output is token-for-token the same as without
    /// it; sampled output has the same distribution (not the same tokens for a seed).
    #[arg(long, value_enum, value_name = "METHOD")]
    pub speculative: Option<SpeculativeMethod>,
    /// Tokens drafted per step (1 = the MTP module once; more re-apply it to its own output).
    /// The default, 3, is SGLang's default for DeepSeek models.
    #[arg(long, value_name = "N", default_value_t = concord_runtime::DEFAULT_DRAFT_TOKENS, requires = "speculative")]
    pub draft_tokens: usize,
}

impl SpeculativeArgs {
    /// The runtime setting, checked (`--draft-tokens` 1..=16).
    pub fn config(&self) -> Result<Option<SpeculativeMtp>> {
        match self.speculative {
            None => Ok(None),
            Some(SpeculativeMethod::Mtp) => {
                let config = SpeculativeMtp {
                    draft_tokens: self.draft_tokens,
                };
                config.validate()?;
                Ok(Some(config))
            }
        }
    }
}

/// Parses `1,2,3` into ids.
pub fn parse_ids(s: &str) -> Result<Vec<u32>> {
    let ids: Result<Vec<u32>> = s
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u32>()
                .map_err(|_| Error::invalid(format!("'{t}' is not a token id")))
        })
        .collect();
    let ids = ids?;
    if ids.is_empty() {
        return Err(Error::invalid("--ids needs at least one token id"));
    }
    Ok(ids)
}

/// Joins ids as `1,2,3`.
pub fn join_ids(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}
