//! The serving engine: requests in, token events out, one scheduler thread driving the model.
//!
//! This is the interface `concord serve` is built on (usable from Rust without HTTP). Each
//! request gets an [`EventSink`]; the engine calls it for every token and once at the end, and
//! cancels the request as soon as the sink returns `false` (the client is gone).
//!
//! Continuous batching (`scheduler`): every step admits queued requests (up to `max_batch`
//! running, in arrival order), runs one [`Model::forward`] over every running sequence and
//! samples each one's next token exactly as [`Model::generate`] does, with the request's own
//! token index as the sampling step, so a request's tokens and log-probabilities are
//! bit-identical to generating it alone whatever else shares the batch. Prompts longer than
//! `prefill_chunk` are fed in chunks over several steps (`running`) while the others keep
//! decoding; chunking does not change a token's bits (see `Running::feed`). Finished and
//! cancelled requests leave the batch, and drop their caches, at once.
//!
//! Speculative requests (`params.speculative`) are not batched: when one reaches the head of
//! the queue the engine stops admitting, lets the batch drain, and runs it alone through
//! [`Model::generate`] (`solo`), then resumes batching.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

mod running;
mod scheduler;
mod solo;

use concord_core::{Error, Result};

use crate::generate::GenerateParams;
use crate::model::Model;

/// Limits of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Most sequences decoded together in one forward pass.
    pub max_batch: usize,
    /// Most prompt tokens one sequence feeds per step (long prompts run in chunks of this).
    pub prefill_chunk: usize,
    /// Most requests waiting to start; more are refused (`Error::Unavailable`, "engine").
    pub max_queue: usize,
    /// Bytes of the paged latent cache every request shares (blocks of `kv_block_size`
    /// tokens; full prompt blocks shared between requests by content). `None`: each request
    /// allocates a cache of its own for its prompt and budget.
    pub kv_cache_bytes: Option<usize>,
    /// Tokens per block of the paged cache.
    pub kv_block_size: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_batch: 32,
            prefill_chunk: 512,
            max_queue: 1024,
            kv_cache_bytes: None,
            kv_block_size: 16,
        }
    }
}

/// One generation request.
#[derive(Debug, Clone)]
pub struct EngineRequest {
    /// Prompt token ids (at least one).
    pub prompt: Vec<u32>,
    /// Sampling and stopping (stop tokens, budget, seed…).
    pub params: GenerateParams,
    /// How many alternatives per token to report with their log-probabilities (0 = none).
    pub top_logprobs: usize,
}

/// Why a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token was produced.
    Stop,
    /// The token budget (or the model's context) was reached.
    Length,
    /// The sink returned false or [`Engine::cancel`] was called.
    Cancelled,
}

/// What the engine reports about a request.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// A generated token.
    Token {
        /// The id.
        id: u32,
        /// Its log-probability under the model's raw distribution (softmax of the logits).
        logprob: f32,
        /// The `top_logprobs` most likely ids and their log-probabilities, best first.
        top_logprobs: Vec<(u32, f32)>,
    },
    /// The request ended normally or was cancelled.
    Finished {
        /// Why.
        reason: FinishReason,
        /// Prompt tokens.
        prompt_tokens: usize,
        /// Generated tokens.
        completion_tokens: usize,
    },
    /// The request failed (the message says why); no further events follow.
    Failed(String),
}

/// Receives a request's events on the engine thread; returning `false` cancels the request.
pub type EventSink = Box<dyn FnMut(EngineEvent) -> bool + Send>;

/// Identifies a submitted request.
pub type RequestId = u64;

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineStats {
    /// Requests waiting to start.
    pub queued: usize,
    /// Requests being generated.
    pub running: usize,
    /// Requests accepted since start.
    pub requests: u64,
    /// Tokens generated since start.
    pub generated_tokens: u64,
    /// Prompt tokens processed since start.
    pub prompt_tokens: u64,
    /// Prompt tokens taken from the paged cache's shared prefixes instead of computed.
    pub prefix_cached_tokens: u64,
    /// Requests put back in the queue to free cache blocks (recomputed when readmitted).
    pub preemptions: u64,
    /// Paged cache: blocks in all, held by requests, and kept for prefix sharing (0 without).
    pub kv_blocks: usize,
    /// See `kv_blocks`.
    pub kv_blocks_used: usize,
    /// See `kv_blocks`.
    pub kv_blocks_cached: usize,
}

struct Pending {
    id: RequestId,
    request: EngineRequest,
    sink: EventSink,
    /// Tokens already sent to the client before a preemption: replayed (fed one at a time, as
    /// they were generated) before sampling resumes.
    replay: Vec<u32>,
}

#[derive(Default)]
struct Shared {
    queue: VecDeque<Pending>,
    cancelled: Vec<RequestId>,
    stats: EngineStats,
    stopping: bool,
}

struct Inner {
    model: Arc<Model>,
    /// The paged latent cache, when configured.
    pool: Option<Arc<crate::kv_pool::KvPool>>,
    config: EngineConfig,
    shared: Mutex<Shared>,
    wake: Condvar,
    next_id: AtomicU64,
    stopped: AtomicBool,
}

/// The engine: owns a scheduler thread over one model.
pub struct Engine {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the scheduler thread.
    pub fn new(model: Arc<Model>, config: EngineConfig) -> Result<Engine> {
        if config.max_batch == 0 || config.prefill_chunk == 0 {
            return Err(Error::invalid(
                "engine: max_batch and prefill_chunk must be at least 1",
            ));
        }
        let pool = match config.kv_cache_bytes {
            None => None,
            Some(bytes) => {
                let block = model.kv_block_bytes(config.kv_block_size.max(1));
                let blocks = bytes / block.max(1);
                if blocks == 0 {
                    return Err(Error::invalid(format!(
                        "engine: a kv cache of {bytes} bytes holds no block of {} tokens ({block} bytes)",
                        config.kv_block_size
                    )));
                }
                Some(model.new_kv_pool(blocks, config.kv_block_size)?)
            }
        };
        let inner = Arc::new(Inner {
            model,
            pool,
            config,
            shared: Mutex::new(Shared::default()),
            wake: Condvar::new(),
            next_id: AtomicU64::new(1),
            stopped: AtomicBool::new(false),
        });
        let worker = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("concord-engine".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::invalid(format!("engine: cannot start its thread: {e}")))?;
        Ok(Engine {
            inner,
            thread: Some(thread),
        })
    }

    /// The model served.
    pub fn model(&self) -> &Arc<Model> {
        &self.inner.model
    }

    /// Queues a request. Errors: bad parameters or prompt (invalid argument), a full queue
    /// (`Error::Unavailable` with backend "engine"), or an engine shutting down.
    pub fn submit(&self, mut request: EngineRequest, sink: EventSink) -> Result<RequestId> {
        request.params.validate()?;
        request.params = request.params.with_model_stops(&self.inner.model);
        if request.prompt.is_empty() {
            return Err(Error::invalid("the prompt has no tokens"));
        }
        let limit = self.inner.model.max_positions();
        if request.prompt.len() >= limit {
            return Err(Error::invalid(format!(
                "the prompt has {} tokens; the model's context is {limit}",
                request.prompt.len()
            )));
        }
        let mut shared = self.inner.lock();
        if shared.stopping {
            return Err(Error::Unavailable {
                backend: "engine".into(),
                reason: "the engine is shutting down".into(),
            });
        }
        if shared.queue.len() >= self.inner.config.max_queue {
            return Err(Error::Unavailable {
                backend: "engine".into(),
                reason: format!("{} requests are already waiting", shared.queue.len()),
            });
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        shared.queue.push_back(Pending {
            id,
            request,
            sink,
            replay: Vec::new(),
        });
        shared.stats.requests += 1;
        shared.stats.queued = shared.queue.len();
        drop(shared);
        self.inner.wake.notify_all();
        Ok(id)
    }

    /// Cancels a request (queued or running); its sink gets `Finished { Cancelled }`.
    pub fn cancel(&self, id: RequestId) {
        self.inner.lock().cancelled.push(id);
        self.inner.wake.notify_all();
    }

    /// Current counters.
    pub fn stats(&self) -> EngineStats {
        let mut stats = self.inner.lock().stats;
        if let Some(pool) = &self.inner.pool {
            let usage = pool.usage();
            stats.kv_blocks = usage.blocks;
            stats.kv_blocks_used = usage.used;
            stats.kv_blocks_cached = usage.cached;
        }
        stats
    }

    /// Stops accepting requests, finishes the running and queued ones, stops the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.inner.lock().stopping = true;
        self.inner.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `log softmax(logits)[id]` and the `top` best ids with theirs, best first (ties → lower id),
/// computed in f64 from the f32 logits.
pub fn logprobs(logits: &[f32], id: u32, top: usize) -> (f32, Vec<(u32, f32)>) {
    let max = logits
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    let log_total = logits
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| (v as f64 - max).exp())
        .sum::<f64>()
        .ln();
    let lp = |v: f32| (v as f64 - max - log_total) as f32;
    let chosen = logits
        .get(id as usize)
        .map_or(f32::NEG_INFINITY, |&v| lp(v));
    let mut best: Vec<(u32, f32)> = Vec::new();
    if top > 0 {
        let mut order: Vec<u32> = (0..logits.len() as u32)
            .filter(|&i| !logits[i as usize].is_nan())
            .collect();
        order.sort_by(|&a, &b| {
            logits[b as usize]
                .total_cmp(&logits[a as usize])
                .then(a.cmp(&b))
        });
        best = order
            .into_iter()
            .take(top)
            .map(|i| (i, lp(logits[i as usize])))
            .collect();
    }
    (chosen, best)
}
