use std::path::PathBuf;

use clap::ValueEnum;
use concord_core::{Error, Result};
use concord_loader::memory_plan::{
    self, checkpoint_size::actual_weight_bytes, parse_size, report, Devices, ExpertsOn,
    PlanRequest, PrecisionChoice,
};
use concord_loader::ModelConfig;

use crate::stdout::outln;

/// Where the routed experts live.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExpertsPlace {
    /// Sharded over the devices by --expert-parallel.
    Device,
    /// Every routed expert once in host RAM, run on the CPU (the KTransformers layout).
    Host,
}

/// Plan the memory of a device layout from config.json alone (no weights needed).
///
/// Prints, for each device and for host RAM: the weights by kind (attention, dense MLP, shared
/// and routed experts, embedding + head, MTP, norms/scales/router), the MLA latent cache at
/// --context x --batch, an activation-workspace estimate, the total and what is left free —
/// then whether it fits, and if not by how much and what to change. The world is
/// tensor-parallel x expert-parallel ranks, one per device (docs/memory-plan.md). When the
/// directory also holds model.safetensors.index.json or safetensors files, the checkpoint's
/// actual size is printed beside the plan's. Exits 0 whether or not the layout fits; bad
/// input exits non-zero.
///
/// Examples:
///   concord plan --model ./DeepSeek-V3 --devices 8x141GiB
///   concord plan --model ./DeepSeek-V3 --devices 8x192GiB --tensor-parallel 2 --expert-parallel 4
///   concord plan --model ./DeepSeek-V3 --devices 16x64GiB --precision fp8 --context 32768 --batch 8
///   concord plan --model ./DeepSeek-V3 --devices 1x141GiB --experts-on host --host-memory 1TiB
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Model directory; only its config.json is needed. Default: the bundled demo model.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// The devices, COUNTxSIZE: 8x141GiB, 16x64GiB (GiB/TiB binary, GB/TB decimal).
    #[arg(long, value_name = "COUNTxSIZE")]
    pub devices: String,
    /// Ranks that split the routed experts. Default: devices / tensor-parallel (1 with
    /// --experts-on host).
    #[arg(long, value_name = "N")]
    pub expert_parallel: Option<usize>,
    /// Ranks that split the attention heads and the dense/shared MLPs. Default: 1 (every
    /// device with --experts-on host).
    #[arg(long, value_name = "N")]
    pub tensor_parallel: Option<usize>,
    /// Where the routed experts live.
    #[arg(long, value_enum, default_value = "device", value_name = "WHERE")]
    pub experts_on: ExpertsPlace,
    /// Host RAM to check the host's share against, e.g. 1TiB.
    #[arg(long, value_name = "SIZE")]
    pub host_memory: Option<String>,
    /// Weight storage: fp8 (block-scaled, as DeepSeek releases), bf16, f32, or as-stored (the
    /// checkpoint's own: fp8 with a quantization_config, else its torch_dtype).
    #[arg(long, default_value = "as-stored", value_name = "P")]
    pub precision: String,
    /// Tokens per sequence (prompt + reply). Default: 32768, or the model's
    /// max_position_embeddings when smaller.
    #[arg(long, value_name = "N")]
    pub context: Option<usize>,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub batch: usize,
}

/// Context planned for when `--context` is not given.
const DEFAULT_CONTEXT: usize = 32768;

pub fn run(args: Args) -> Result<()> {
    let dir = args.model.unwrap_or_else(crate::common::demo_model_dir);
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(Error::invalid(format!(
            "{} is not a model directory (no config.json)",
            dir.display()
        )));
    }
    let cfg = ModelConfig::from_file(&config_path)?;
    let request = PlanRequest {
        devices: args.devices.parse::<Devices>()?,
        tensor_parallel: args.tensor_parallel,
        expert_parallel: args.expert_parallel,
        experts_on: match args.experts_on {
            ExpertsPlace::Device => ExpertsOn::Device,
            ExpertsPlace::Host => ExpertsOn::Host,
        },
        host_memory: args
            .host_memory
            .as_deref()
            .map(|s| parse_size(s, "--host-memory"))
            .transpose()?,
        precision: args.precision.parse::<PrecisionChoice>()?,
        context: args
            .context
            .unwrap_or(DEFAULT_CONTEXT.min(cfg.max_position_embeddings)),
        batch: args.batch,
    };
    let plan = memory_plan::plan(&cfg, &request)?;
    let actual = actual_weight_bytes(&dir)?;
    outln!("plan for     {}", dir.display())?;
    for line in report::render(&cfg, &plan, actual) {
        outln!("{line}")?;
    }
    Ok(())
}
