use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use concord_core::{Error, Result};
use concord_runtime::engine::EngineConfig;
use concord_server::{AppState, ServerConfig};

use super::kv_budget::{kv_cache_budget, KvBudget};
use crate::common::ModelArgs;

/// Serve the model over HTTP with OpenAI's API (chat completions, completions, streaming).
///
/// Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,
/// GET /metrics (Prometheus). SIGINT/SIGTERM stop accepting connections, let the requests in
/// flight finish (at most --shutdown-grace seconds) and exit 0.
///
/// Examples:
///   concord serve
///   concord serve --model ./DeepSeek-V3 --backend cuda --host 0.0.0.0 --port 8000
///   concord serve --model ./Moonlight --served-model-name moonlight --max-queue 64
///   curl localhost:8000/v1/chat/completions -H 'content-type: application/json' \
///     -d '{"model": "demo", "messages": [{"role": "user", "content": "Hi"}], "stream": true}'
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 = any free port, printed at start).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// The model id clients name (`/v1/models`). Default: the model directory's name.
    #[arg(long, value_name = "NAME")]
    pub served_model_name: Option<String>,
    /// Most sequences decoded together.
    #[arg(long, value_name = "N", default_value_t = EngineConfig::default().max_batch)]
    pub max_batch: usize,
    /// Most requests waiting to start; more are answered 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = EngineConfig::default().max_queue)]
    pub max_queue: usize,
    /// Seconds to let the requests in flight finish after SIGINT/SIGTERM before cancelling
    /// them.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub shutdown_grace: u64,
    /// GiB of the paged latent cache all requests share (blocks; repeated prompt prefixes
    /// are computed once). Default: the device's free memory after the weights minus a
    /// margin (10 %, at least 1 GiB; on the CPU backend the host's MemAvailable), at most
    /// what --max-batch sequences of the whole context need (that, when the backend cannot
    /// tell its free memory).
    #[arg(long, value_name = "GIB")]
    pub kv_cache_memory: Option<f64>,
    /// Tokens per cache block.
    #[arg(long, value_name = "N", default_value_t = EngineConfig::default().kv_block_size)]
    pub kv_block_size: usize,
    /// Most prompt tokens a request feeds per step (long prompts run in chunks, so decoding
    /// requests are not stalled).
    #[arg(long, value_name = "N", default_value_t = EngineConfig::default().prefill_chunk)]
    pub prefill_chunk: usize,
}

/// The paged cache's size (see [`kv_cache_budget`]), from the backend's free memory after
/// the weights are loaded.
fn kv_cache_size(args: &Args, model: &concord_runtime::Model) -> Result<KvBudget> {
    let block = args.kv_block_size.max(1);
    let one_sequence = model
        .kv_block_bytes(block)
        .saturating_mul(model.max_positions().div_ceil(block));
    let needed = one_sequence.saturating_mul(args.max_batch.max(1));
    let memory = if args.kv_cache_memory.is_some() {
        None
    } else {
        model.backend().memory()
    };
    kv_cache_budget(args.kv_cache_memory, memory, needed, one_sequence)
}

pub fn run(args: Args) -> Result<()> {
    let dir = args.model.dir()?;
    let served_model_name = match &args.served_model_name {
        Some(name) => name.clone(),
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_owned()),
    };
    args.model.require_one_rank("serve")?;
    let tokenizer = args.model.tokenizer()?;
    let model = Arc::new(args.model.load()?);
    let budget = kv_cache_size(&args, &model)?;
    let kv_cache_bytes = budget.bytes;
    tracing::info!(
        bytes = kv_cache_bytes,
        block_tokens = args.kv_block_size,
        "paged latent cache of {:.2} GiB: {}",
        kv_cache_bytes as f64 / (1u64 << 30) as f64,
        budget.source
    );
    let config = ServerConfig {
        served_model_name,
        engine: EngineConfig {
            max_batch: args.max_batch,
            max_queue: args.max_queue,
            prefill_chunk: args.prefill_chunk,
            kv_cache_bytes: Some(kv_cache_bytes),
            kv_block_size: args.kv_block_size,
        },
    };
    let state = Arc::new(AppState::new(model, tokenizer, config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::invalid(format!("serve: cannot start the async runtime: {e}")))?;
    let address = format!("{}:{}", args.host, args.port);
    let grace = Duration::from_secs(args.shutdown_grace);
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|e| Error::invalid(format!("serve: cannot listen on {address}: {e}")))?;
        let local: Option<SocketAddr> = listener.local_addr().ok();
        eprintln!(
            "serving '{}' on http://{} (Ctrl-C to stop)",
            state.model_name,
            local.map_or(address.clone(), |a| a.to_string())
        );
        concord_server::serve(listener, Arc::clone(&state), grace, shutdown_signal())
            .await
            .map_err(|e| Error::invalid(format!("serve: {e}")))
    });
    // Stops the engine thread once every request is answered or cancelled.
    drop(state);
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("no SIGINT handler: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("no SIGTERM handler: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    eprintln!("shutting down: finishing the requests in flight");
}
