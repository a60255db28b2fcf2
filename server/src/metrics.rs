//! Prometheus metrics (`GET /metrics`, text exposition format).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use concord_runtime::engine::{EngineStats, FinishReason};

type Labels = Vec<(String, String)>;

/// The server's metrics. Counters are updated by the requests' event sinks (on the engine
/// thread), the gauges from the engine's stats when scraped.
pub struct Metrics {
    registry: Registry,
    requests: Counter,
    finished: Family<Labels, Counter>,
    prompt_tokens: Counter,
    generated_tokens: Counter,
    queue_depth: Gauge,
    running: Gauge,
    /// Paged cache gauges (from the engine's stats): blocks in all, held, kept for sharing.
    kv_blocks: Family<Labels, Gauge>,
    /// Prompt tokens taken from shared prefixes, and preemptions (engine totals).
    prefix_cached_tokens: Gauge,
    preemptions: Gauge,
    time_to_first_token: Histogram,
    inter_token_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("concord");
        let requests = Counter::default();
        let finished = Family::<Labels, Counter>::default();
        let prompt_tokens = Counter::default();
        let generated_tokens = Counter::default();
        let queue_depth = Gauge::default();
        let running = Gauge::default();
        let kv_blocks = Family::<Labels, Gauge>::default();
        let prefix_cached_tokens = Gauge::default();
        let preemptions = Gauge::default();
        registry.register(
            "kv_cache_blocks",
            "Paged latent cache blocks, by state (total, used, cached)",
            kv_blocks.clone(),
        );
        registry.register(
            "prefix_cached_prompt_tokens",
            "Prompt tokens taken from the cache's shared prefixes instead of computed",
            prefix_cached_tokens.clone(),
        );
        registry.register(
            "preemptions",
            "Requests put back in the queue to free cache blocks",
            preemptions.clone(),
        );
        // 1 ms … ~33 s.
        let time_to_first_token = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        // 0.1 ms … ~3.3 s.
        let inter_token_latency = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "requests",
            "Requests accepted by the engine",
            requests.clone(),
        );
        registry.register(
            "requests_finished",
            "Requests ended, by reason (stop, length, cancelled, failed)",
            finished.clone(),
        );
        registry.register(
            "prompt_tokens",
            "Prompt tokens of accepted requests",
            prompt_tokens.clone(),
        );
        registry.register(
            "generated_tokens",
            "Tokens generated",
            generated_tokens.clone(),
        );
        registry.register(
            "queue_depth",
            "Requests waiting to start",
            queue_depth.clone(),
        );
        registry.register(
            "running_requests",
            "Requests being generated",
            running.clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Time from a request's submission to its first token",
            time_to_first_token.clone(),
        );
        registry.register(
            "inter_token_latency_seconds",
            "Time between consecutive tokens of a request",
            inter_token_latency.clone(),
        );
        Metrics {
            registry,
            requests,
            finished,
            prompt_tokens,
            generated_tokens,
            queue_depth,
            running,
            kv_blocks,
            prefix_cached_tokens,
            preemptions,
            time_to_first_token,
            inter_token_latency,
        }
    }

    /// A request was accepted with `prompt_tokens` prompt tokens.
    pub fn accepted(&self, prompt_tokens: usize) {
        self.requests.inc();
        self.prompt_tokens.inc_by(prompt_tokens as u64);
    }

    /// A token was generated, `since` seconds after the previous one (or the submission).
    pub fn token(&self, first: bool, since: f64) {
        self.generated_tokens.inc();
        if first {
            self.time_to_first_token.observe(since);
        } else {
            self.inter_token_latency.observe(since);
        }
    }

    /// A request ended.
    pub fn finished(&self, reason: Option<FinishReason>) {
        let label = match reason {
            Some(FinishReason::Stop) => "stop",
            Some(FinishReason::Length) => "length",
            Some(FinishReason::Cancelled) => "cancelled",
            None => "failed",
        };
        self.finished
            .get_or_create(&vec![("reason".to_owned(), label.to_owned())])
            .inc();
    }

    /// The text exposition, with the gauges set from `stats`.
    pub fn render(&self, stats: &EngineStats) -> String {
        self.queue_depth.set(stats.queued as i64);
        self.running.set(stats.running as i64);
        for (state, value) in [
            ("total", stats.kv_blocks),
            ("used", stats.kv_blocks_used),
            ("cached", stats.kv_blocks_cached),
        ] {
            self.kv_blocks
                .get_or_create(&vec![("state".to_owned(), state.to_owned())])
                .set(value as i64);
        }
        self.prefix_cached_tokens
            .set(stats.prefix_cached_tokens as i64);
        self.preemptions.set(stats.preemptions as i64);
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &self.registry) {
            tracing::warn!("cannot encode the metrics: {e}");
        }
        text
    }
}
