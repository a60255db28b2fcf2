//! The memory planner behind `concord plan`: from `config.json` alone, how much memory each
//! device and the host need for a layout (docs/memory-plan.md) — weights by kind, the MLA
//! latent cache, an activation-workspace estimate — and whether that fits.
//!
//! - [`devices`]: `--devices 8x141GiB`, `--host-memory 1TiB`;
//! - [`layout`]: TP × EP ranks and what each splits;
//! - [`shapes`]: every tensor's bytes at a storage precision, placed by the layout;
//! - [`workspace`]: latent cache and workspace formulas;
//! - [`verdict`]: fits or not, and what to change;
//! - [`report`]: the printed table.

pub mod checkpoint_size;
pub mod devices;
pub mod layout;
pub mod report;
pub mod shapes;
pub mod verdict;
pub mod workspace;

use std::str::FromStr;

use concord_core::{Error, Result};

use crate::config::ModelConfig;
pub use devices::{parse_size, Devices};
pub use layout::{ExpertsOn, Layout};
pub use shapes::{Category, WeightBytes, WeightStorage};

/// `--precision`: the storage the plan assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrecisionChoice {
    /// What the checkpoint stores: fp8 with a `quantization_config`, else its `torch_dtype`.
    AsStored,
    /// Block-FP8 projections, BF16 elsewhere.
    Fp8,
    /// BF16 everywhere.
    Bf16,
    /// F32 everywhere.
    F32,
}

impl FromStr for PrecisionChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "as-stored" | "stored" => Ok(PrecisionChoice::AsStored),
            "fp8" | "f8" | "f8_e4m3" => Ok(PrecisionChoice::Fp8),
            "bf16" | "bfloat16" => Ok(PrecisionChoice::Bf16),
            "f32" | "fp32" | "float32" => Ok(PrecisionChoice::F32),
            other => Err(Error::invalid(format!(
                "--precision: unknown value {other:?} (expected fp8, bf16, f32 or as-stored)"
            ))),
        }
    }
}

impl PrecisionChoice {
    /// The storage this choice means for `cfg`.
    pub fn resolve(self, cfg: &ModelConfig) -> WeightStorage {
        let fp8 = WeightStorage::Fp8 {
            block: cfg.weight_block_size(),
        };
        match self {
            PrecisionChoice::Fp8 => fp8,
            PrecisionChoice::Bf16 => WeightStorage::Bf16,
            PrecisionChoice::F32 => WeightStorage::F32,
            PrecisionChoice::AsStored if cfg.quantization.is_some() => fp8,
            PrecisionChoice::AsStored => match cfg.torch_dtype.as_deref() {
                Some("float32") => WeightStorage::F32,
                _ => WeightStorage::Bf16,
            },
        }
    }
}

/// What to plan for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanRequest {
    /// The devices (one rank each).
    pub devices: Devices,
    /// `--tensor-parallel`, if given.
    pub tensor_parallel: Option<usize>,
    /// `--expert-parallel`, if given.
    pub expert_parallel: Option<usize>,
    /// `--experts-on`.
    pub experts_on: ExpertsOn,
    /// `--host-memory`, if given.
    pub host_memory: Option<u64>,
    /// `--precision`.
    pub precision: PrecisionChoice,
    /// Tokens per sequence (prompt + reply).
    pub context: usize,
    /// Sequences decoded together.
    pub batch: usize,
}

/// The memory of one side: a device, or the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideMemory {
    /// Weights by kind.
    pub weights: WeightBytes,
    /// Copies the runtime adds (`kv_b_proj` in BF16 at fp8, for absorbed decode).
    pub decode_copies: u64,
    /// MLA latent cache.
    pub latent_cache: u64,
    /// Activation workspace estimate ([`workspace::workspace_bytes`]).
    pub workspace: u64,
}

impl SideMemory {
    /// Everything together.
    pub fn total(&self) -> u64 {
        self.weights.total() + self.decode_copies + self.latent_cache + self.workspace
    }
}

/// The plan for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The request it answers.
    pub request: PlanRequest,
    /// The resolved layout.
    pub layout: Layout,
    /// The resolved storage.
    pub storage: WeightStorage,
    /// Each device (all alike: the splits are exact).
    pub device: SideMemory,
    /// Host RAM.
    pub host: SideMemory,
    /// Every weight once at the planned storage.
    pub whole_model: WeightBytes,
    /// Every weight once as the checkpoint stores it (what its files should hold).
    pub as_stored_total: u64,
}

impl MemoryPlan {
    /// Bytes each device lacks, if any.
    pub fn device_shortfall(&self) -> Option<u64> {
        shortfall(self.device.total(), self.request.devices.bytes_each)
    }

    /// Bytes the host lacks, if `--host-memory` was given and is short.
    pub fn host_shortfall(&self) -> Option<u64> {
        shortfall(self.host.total(), self.request.host_memory?)
    }

    /// True iff the devices (and the host, when its size is known) hold the plan.
    pub fn fits(&self) -> bool {
        self.device_shortfall().is_none() && self.host_shortfall().is_none()
    }
}

fn shortfall(need: u64, have: u64) -> Option<u64> {
    (need > have).then(|| need - have)
}

/// Plans `request` for `cfg`; errors name the flag or config field that is wrong.
pub fn plan(cfg: &ModelConfig, request: &PlanRequest) -> Result<MemoryPlan> {
    cfg.validate()?;
    if request.context == 0 {
        return Err(Error::invalid("--context must be at least 1 token"));
    }
    if request.batch == 0 {
        return Err(Error::invalid("--batch must be at least 1 sequence"));
    }
    let layout = Layout::resolve(
        cfg,
        request.devices.count,
        request.tensor_parallel,
        request.expert_parallel,
        request.experts_on,
    )?;
    let storage = request.precision.resolve(cfg);
    let placed = shapes::place_weights(cfg, storage, &layout);
    let stored = PrecisionChoice::AsStored.resolve(cfg);
    let as_stored_total = if stored == storage {
        placed.whole_model.total()
    } else {
        shapes::place_weights(cfg, stored, &layout)
            .whole_model
            .total()
    };
    let (device_ws, host_ws) =
        workspace::workspace_bytes(cfg, storage, &layout, request.context, request.batch);
    Ok(MemoryPlan {
        request: *request,
        layout,
        storage,
        device: SideMemory {
            weights: placed.per_device,
            decode_copies: placed.decode_copies_per_device,
            latent_cache: workspace::latent_cache_bytes(
                cfg,
                storage,
                request.context,
                request.batch,
            ),
            workspace: device_ws,
        },
        host: SideMemory {
            weights: placed.host,
            decode_copies: 0,
            latent_cache: 0,
            workspace: host_ws,
        },
        whole_model: placed.whole_model,
        as_stored_total,
    })
}
