//! Concord runtime: the DeepSeek-V3 model graph over any [`concord_ops::Backend`], its latent
//! KV cache, batched forward passes, generation (plain or speculative with the model's MTP
//! module), tokenizer and chat template, and a serving engine.
//!
//! # A tour
//!
//! Load a Hugging Face checkpoint directory (here the bundled demo model) on a backend, at its
//! native precision, then generate — greedy, and stopping at the model's end-of-sequence token
//! as [`GenerateParams::default`] does (`stop_at_eos: false` runs to `max_new_tokens`):
//!
//! ```
//! use concord_runtime::{open_backend, text::Tokenizer, GenerateParams, LoadOptions, Model};
//!
//! # fn main() -> concord_core::Result<()> {
//! let dir = concord_runtime::demo_model_dir();
//! let model = Model::load(&dir, open_backend("cpu")?, &LoadOptions::default(), &mut |_, _| true)?;
//! let tokenizer = Tokenizer::from_dir(&dir)?;
//!
//! let prompt = tokenizer.encode("It was the best of times,", true)?;
//! let params = GenerateParams { max_new_tokens: 12, ..GenerateParams::default() };
//! let mut stream = tokenizer.decoder_stream();
//! let mut text = String::new();
//! for token in model.generate(&prompt, params)? {
//!     // Tokens arrive one by one; the decoder stream turns them into text as it completes.
//!     if let Some(piece) = stream.push(token?) {
//!         text.push_str(&piece);
//!     }
//! }
//! assert!(text.starts_with(" it was the worst of times"));
//! # Ok(())
//! # }
//! ```
//!
//! Seeded sampling gives the same tokens for the same seed, on every backend:
//!
//! ```
//! # use concord_runtime::{open_backend, GenerateParams, LoadOptions, Model};
//! # fn main() -> concord_core::Result<()> {
//! # let model = Model::load(&concord_runtime::demo_model_dir(), open_backend("cpu")?,
//! #     &LoadOptions::default(), &mut |_, _| true)?;
//! let params = GenerateParams { max_new_tokens: 8, temperature: 0.8, top_p: 0.95, seed: 42,
//!     ..GenerateParams::default() };
//! let a: Vec<u32> = model.generate(&[0, 305, 303], params.clone())?.collect::<Result<_, _>>()?;
//! let b: Vec<u32> = model.generate(&[0, 305, 303], params)?.collect::<Result<_, _>>()?;
//! assert_eq!(a, b);
//! # Ok(())
//! # }
//! ```
//!
//! Several sequences run as one batch, each bit-identical to running alone; every position's
//! logits come back:
//!
//! ```
//! # use concord_runtime::{open_backend, LoadOptions, LogitRows, Model};
//! # fn main() -> concord_core::Result<()> {
//! # let model = Model::load(&concord_runtime::demo_model_dir(), open_backend("cpu")?,
//! #     &LoadOptions::default(), &mut |_, _| true)?;
//! let (a, b): (&[u32], &[u32]) = (&[0, 305, 303, 279], &[0, 27]);
//! let mut seq_a = model.new_sequence(a.len())?;
//! let mut seq_b = model.new_sequence(b.len())?;
//! let batch = model.forward(&mut [&mut seq_a, &mut seq_b], &[a, b], LogitRows::All)?;
//! assert_eq!(batch.per_sequence[0].len(), a.len() * batch.vocab);
//!
//! let mut alone = model.new_sequence(b.len())?;
//! let solo = model.forward(&mut [&mut alone], &[b], LogitRows::All)?;
//! assert_eq!(solo.per_sequence[0], batch.per_sequence[1]);
//! # Ok(())
//! # }
//! ```
//!
//! Speculative decoding with the model's MTP module (`LoadOptions::mtp`,
//! `GenerateParams::speculative`) gives the same greedy tokens, faster where decode is bound by
//! memory or launch cost. Backends other than the CPU are cargo features (`opencl`, `cuda`,
//! `rocm`, `ascend`, `all-backends`).
#![forbid(unsafe_code)]

pub mod backends;
mod buffer_pool;
pub mod convert;
mod demo_model;
pub mod engine;
mod exec;
pub mod generate;
mod host_convert;
mod kv_cache;
pub mod kv_pool;
pub mod model;
mod precision;
pub mod profile;
mod rope_table;
pub mod speculative;
pub mod staged_output;
pub mod text;
mod token_history;

pub use backends::{open_backend, open_backend_mode, BACKEND_NAMES};
pub use concord_backend_cpu::set_threads as set_cpu_threads;
pub use demo_model::{demo_model_dir, DEMO_MODEL_ENV};
pub use exec::{DeviceTensor, Executor};
pub use generate::{GenerateParams, Generation};
pub use host_convert::{quantize_block_fp8, BlockFp8};
pub use kv_pool::{KvPool, KvPoolUsage};
pub use model::{
    native_precision, BatchLogits, ExpertPlacement, LoadOptions, LogitRows, Model, ParallelLayout,
    Sequence,
};
pub use precision::Precision;
pub use profile::OpProfile;
pub use speculative::{AcceptanceStats, SpeculativeMtp, DEFAULT_DRAFT_TOKENS};
pub use token_history::TokenHistory;
