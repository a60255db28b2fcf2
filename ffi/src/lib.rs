//! Concord C ABI: `libconcord` (cdylib and staticlib) and its header `include/concord.h`,
//! generated from this crate by cbindgen (`CONCORD_UPDATE_HEADER=1 cargo test -p concord-ffi
//! header` rewrites it; `tests/header.rs` fails while it is stale).
//!
//! Every `extern "C"` function here follows one pattern:
//! - pointer arguments are checked first (NULL, misaligned → `CONCORD_ERR_INVALID_ARGUMENT`),
//!   C strings must be UTF-8, sizes are range-checked before any slice is formed;
//! - handles are looked up in a registry of live handles (`handles.rs`), so a freed, foreign or
//!   wrong-kind pointer is `CONCORD_ERR_INVALID_HANDLE`, never a dereference;
//! - the body runs under `status::guard` (`catch_unwind`): a panic becomes
//!   `CONCORD_ERR_INTERNAL` and never unwinds into C;
//! - every failure leaves a message for `concord_last_error()` on the calling thread.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Plumbing.
mod args;
mod handles;

// The API, in the order the header presents it (cbindgen follows this order).
mod version;

mod status;

mod backend;

mod model;

mod text;

mod session;

pub use backend::{concord_backend_count, concord_backend_name, concord_backend_probe};
pub use model::{
    concord_demo_model_path, concord_model_default_params, concord_model_free, concord_model_load,
    concord_model_max_positions, concord_model_n_vocab, ConcordModel, ModelParams, Precision,
    ProgressCallback,
};
pub use session::{
    concord_generate, concord_generate_params_default, concord_session_acceptance,
    concord_session_free, concord_session_logits, concord_session_new, concord_session_next,
    AcceptanceStats, ConcordSession, GenerateParams, TokenCallback,
};
pub use status::{concord_last_error, concord_version, Status};
pub use text::{
    concord_chat_template, concord_chat_template_ex, concord_detokenize, concord_tokenize,
    ChatMessage,
};
pub use version::{CONCORD_VERSION_MAJOR, CONCORD_VERSION_MINOR, CONCORD_VERSION_PATCH};
