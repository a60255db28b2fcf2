//! Concord loader: Hugging Face DeepSeek-V3 config.json and (sharded) safetensors checkpoints.
//!
//! - [`ModelConfig`]: tolerant `config.json` parsing (V3 and V2), HF-exact YaRN parameters;
//! - [`Checkpoint`]: memory-mapped `model.safetensors` or index + shards, [`TensorView`]s with
//!   exact f32 upcasts and [`dequantize_block_fp8`];
//! - [`expected_tensors`] / [`validate_checkpoint`]: the tensor inventory a config implies;
//! - [`memory_plan`]: how much memory a device layout needs, from the config alone.
//!
//! `unsafe` is denied everywhere except the single `memmap2` call in `mmap.rs`: checkpoint files
//! must not be modified while a [`Checkpoint`] is open.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod alloc;
pub mod checkpoint;
pub mod config;
pub mod coverage;
pub mod generation;
pub mod inventory;
mod json_fields;
pub mod limits;
pub mod memory_plan;
mod mmap;
mod rope_config;
mod torch_pow;

pub use checkpoint::{dequantize_block_fp8, dequantize_block_fp8_into, Checkpoint, TensorView};
pub use config::{
    Architecture, ModelConfig, QuantizationConfig, RopeScaling, RopeScalingKind, ScoringFunc,
    TopkMethod,
};
pub use coverage::{check_checkpoint_extent, expert_index};
pub use generation::{read_generation_config, GenerationConfig};
pub use inventory::{
    expected_tensors, is_mtp_tensor, layer_index, validate_checkpoint, ExpectedTensor, TensorRole,
};
