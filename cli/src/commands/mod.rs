//! One file per subcommand.

pub mod backends;
pub mod bench;
pub mod chat;
pub mod conformance;
pub mod convert;
pub mod generate;
pub mod inspect;
pub mod kernels;
pub mod kv_budget;
pub mod logits;
pub mod plan;
pub mod sampling_flags;
pub mod serve;
pub mod token_logprobs;
pub mod tokenize;
