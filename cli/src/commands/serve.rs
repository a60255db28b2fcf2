use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use concord_core::{Error, Result};
use concord_runtime::engine::EngineConfig;
use concord_server::{AppState, ServerConfig};

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
    /// are computed once). Default: room for --max-batch sequences of the whole context, at
    /// most half of the host's available memory.
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

/// Bytes of available host memory (`MemAvailable` of /proc/meminfo), when known.
fn host_available_bytes() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The paged cache's size: asked for, or room for every batch slot's whole context capped at
/// half the available host memory.
fn kv_cache_bytes(args: &Args, model: &concord_runtime::Model) -> Result<usize> {
    if let Some(gib) = args.kv_cache_memory {
        if !(gib.is_finite() && gib > 0.0) {
            return Err(Error::invalid(format!(
                "--kv-cache-memory must be a positive number of GiB, got {gib}"
            )));
        }
        return Ok((gib * (1u64 << 30) as f64) as usize);
    }
    let block = args.kv_block_size.max(1);
    let blocks_per_sequence = model.max_positions().div_ceil(block);
    let full = model
        .kv_block_bytes(block)
        .saturating_mul(blocks_per_sequence)
        .saturating_mul(args.max_batch.max(1));
    Ok(match host_available_bytes() {
        Some(available) => full.min(available / 2),
        None => full,
    })
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
    let kv_cache_bytes = kv_cache_bytes(&args, &model)?;
    tracing::info!(
        bytes = kv_cache_bytes,
        block_tokens = args.kv_block_size,
        "paged latent cache"
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
