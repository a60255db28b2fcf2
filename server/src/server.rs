//! The shared state, the listener and graceful shutdown.

use std::collections::HashSet;
use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use concord_core::Result;
use concord_runtime::engine::{Engine, EngineConfig, RequestId};
use concord_runtime::text::Tokenizer;
use concord_runtime::Model;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::routes;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The id `/v1/models` lists and requests' `model` must match.
    pub served_model_name: String,
    /// The engine's limits.
    pub engine: EngineConfig,
}

/// What every handler shares.
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// The model's tokenizer.
    pub tokenizer: Tokenizer,
    /// The served model id.
    pub model_name: String,
    /// The model's end-of-sequence ids (stop tokens of every request).
    pub eos: Vec<u32>,
    /// The model's context length.
    pub max_positions: usize,
    /// Unix seconds at start.
    pub created: u64,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    in_flight: Mutex<HashSet<RequestId>>,
}

impl AppState {
    /// Starts the engine over `model`.
    pub fn new(model: Arc<Model>, tokenizer: Tokenizer, config: ServerConfig) -> Result<Self> {
        let eos = model.config().eos_token_ids.clone();
        let max_positions = model.max_positions();
        let engine = Engine::new(model, config.engine)?;
        Ok(AppState {
            engine,
            tokenizer,
            model_name: config.served_model_name,
            eos,
            max_positions,
            created: unix_seconds(),
            metrics: Arc::new(Metrics::new()),
            in_flight: Mutex::new(HashSet::new()),
        })
    }

    /// The text of one token (special tokens included), for log-probabilities.
    pub fn token_text(&self, id: u32) -> String {
        self.tokenizer.decode(&[id], false)
    }

    pub(crate) fn track(&self, id: RequestId) {
        self.lock_in_flight().insert(id);
    }

    pub(crate) fn untrack(&self, id: RequestId) {
        self.lock_in_flight().remove(&id);
    }

    /// Requests submitted and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.lock_in_flight().len()
    }

    fn cancel_all(&self) {
        let ids: Vec<RequestId> = self.lock_in_flight().iter().copied().collect();
        for id in ids {
            self.engine.cancel(id);
        }
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<RequestId>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Unix time in seconds (0 before 1970).
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves on `listener` until `shutdown` completes; then stops accepting connections, lets
/// the requests in flight finish for at most `grace`, cancels those still running, and
/// returns.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop_accepting = Arc::new(Notify::new());
    let notified = Arc::clone(&stop_accepting);
    let app = routes::router(Arc::clone(&state));
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { notified.notified().await })
            .into_future(),
    );
    tokio::select! {
        finished = &mut server => return joined(finished),
        () = shutdown => {}
    }
    tracing::info!(
        in_flight = state.in_flight(),
        "shutting down: no new connections; waiting for the requests in flight"
    );
    stop_accepting.notify_one();
    match tokio::time::timeout(grace, &mut server).await {
        Ok(finished) => joined(finished),
        Err(_) => {
            tracing::warn!(
                in_flight = state.in_flight(),
                "requests still running after {grace:?}: cancelling them"
            );
            state.cancel_all();
            server.abort();
            Ok(())
        }
    }
}

fn joined(
    finished: std::result::Result<std::io::Result<()>, tokio::task::JoinError>,
) -> std::io::Result<()> {
    finished.unwrap_or_else(|e| {
        Err(std::io::Error::other(format!(
            "the server task failed: {e}"
        )))
    })
}
