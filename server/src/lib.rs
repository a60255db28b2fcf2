//! `concord serve`: an OpenAI-compatible HTTP server over [`concord_runtime::engine::Engine`].
//!
//! - [`routes`]: the endpoints (`/v1/chat/completions`, `/v1/completions`, `/v1/models`,
//!   `/health`, `/metrics`) and request validation.
//! - [`openai`]: the request and response bodies, as OpenAI's API defines them.
//! - [`generation`]: one request's engine events turned into text deltas, stop strings and usage.
//! - [`sse`]: server-sent-event streaming of the deltas.
//! - [`error`]: errors in OpenAI's `{"error": {...}}` shape with their HTTP status.
//! - [`metrics`]: Prometheus counters, gauges and latency histograms.
//! - [`server`]: the shared state, binding and graceful shutdown.

pub mod error;
pub mod generation;
pub mod metrics;
pub mod openai;
pub mod routes;
pub mod server;
pub mod sse;

pub use server::{serve, AppState, ServerConfig};
