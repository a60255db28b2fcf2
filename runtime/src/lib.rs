//! Concord runtime: the DeepSeek-V3 model graph over any [`concord_ops::Backend`], its latent
//! KV cache, batched forward passes, generation, tokenizer and chat template.
#![forbid(unsafe_code)]

pub mod backends;
pub mod convert;
mod demo_model;
pub mod engine;
mod exec;
pub mod generate;
mod host_convert;
mod kv_cache;
pub mod model;
mod precision;
mod rope_table;
pub mod speculative;
pub mod staged_output;
pub mod text;

pub use backends::{open_backend, open_backend_mode, BACKEND_NAMES};
pub use concord_backend_cpu::set_threads as set_cpu_threads;
pub use demo_model::{demo_model_dir, DEMO_MODEL_ENV};
pub use exec::{DeviceTensor, Executor};
pub use generate::{GenerateParams, Generation};
pub use host_convert::{quantize_block_fp8, BlockFp8};
pub use model::{native_precision, BatchLogits, LoadOptions, LogitRows, Model, Sequence};
pub use precision::Precision;
pub use speculative::{AcceptanceStats, SpeculativeMtp};
