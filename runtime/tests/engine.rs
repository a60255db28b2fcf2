//! The serving engine against plain generation: continuous batching and chunked prefill give
//! every request the tokens and log-probabilities `Model::generate` gives it alone.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use concord_runtime::engine::{
    logprobs, Engine, EngineConfig, EngineEvent, EngineRequest, FinishReason, RequestId,
};
use concord_runtime::{GenerateParams, LoadOptions, LogitRows, Model};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn load(dir: &Path, mtp: bool) -> Arc<Model> {
    let backend = concord_runtime::open_backend("cpu").expect("cpu backend");
    let options = LoadOptions {
        precision: None,
        max_positions: None,
        mtp,
    };
    Arc::new(
        Model::load(dir, backend, &options, &mut |_, _| true)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
    )
}

/// A reproducible prompt of `len` ids below `vocab` (a linear congruential walk).
fn prompt(len: usize, salt: u64, vocab: usize) -> Vec<u32> {
    let mut x = salt.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % vocab as u64) as u32
        })
        .collect()
}

/// One token as the engine reports it: id, logprob bits, top alternatives with their bits.
type Reported = (u32, u32, Vec<(u32, u32)>);

/// The oracle: `Model::generate` of the request alone, with `logprobs` of its logits.
fn reference(model: &Model, request: &EngineRequest) -> Vec<Reported> {
    let mut generation = model
        .generate(&request.prompt, request.params.clone())
        .expect("generate");
    let mut out = Vec::new();
    while let Some(token) = generation.next() {
        let id = token.expect("token");
        let (lp, top) = logprobs(generation.last_logits(), id, request.top_logprobs);
        out.push((
            id,
            lp.to_bits(),
            top.into_iter().map(|(i, v)| (i, v.to_bits())).collect(),
        ));
    }
    out
}

/// Everything one request received, in order.
#[derive(Default, Debug)]
struct Received {
    tokens: Vec<Reported>,
    finished: Option<(FinishReason, usize, usize)>,
    failed: Option<String>,
}

impl Received {
    fn ended(&self) -> bool {
        self.finished.is_some() || self.failed.is_some()
    }
}

/// A sink sending `(index, event)` down `tx`.
fn sink(index: usize, tx: &Sender<(usize, EngineEvent)>) -> concord_runtime::engine::EventSink {
    let tx = tx.clone();
    Box::new(move |e| tx.send((index, e)).is_ok())
}

fn record(received: &mut [Received], (i, event): (usize, EngineEvent)) {
    let r = &mut received[i];
    assert!(!r.ended(), "request {i} got {event:?} after its end");
    match event {
        EngineEvent::Token {
            id,
            logprob,
            top_logprobs,
        } => r.tokens.push((
            id,
            logprob.to_bits(),
            top_logprobs
                .into_iter()
                .map(|(i, v)| (i, v.to_bits()))
                .collect(),
        )),
        EngineEvent::Finished {
            reason,
            prompt_tokens,
            completion_tokens,
        } => r.finished = Some((reason, prompt_tokens, completion_tokens)),
        EngineEvent::Failed(m) => r.failed = Some(m),
    }
}

/// Receives until every request ended.
fn collect(rx: &Receiver<(usize, EngineEvent)>, count: usize) -> Vec<Received> {
    let mut received: Vec<Received> = (0..count).map(|_| Received::default()).collect();
    while !received.iter().all(Received::ended) {
        let event = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the engine stopped reporting");
        record(&mut received, event);
    }
    received
}

/// `count` requests with prompts of 1..=`longest` tokens, budgets 1..=17, alternately greedy
/// and seeded sampling, some with a stop token and top log-probabilities.
fn mixed_requests(count: usize, longest: usize, vocab: usize) -> Vec<EngineRequest> {
    (0..count)
        .map(|i| {
            let len = 1 + (i * 37 + i * i * 11) % longest;
            let sampled = i % 2 == 1;
            EngineRequest {
                prompt: prompt(len, i as u64, vocab),
                params: GenerateParams {
                    max_new_tokens: 1 + (i * 7) % 17,
                    temperature: if sampled { 0.9 } else { 0.0 },
                    top_k: if i % 4 == 1 { 20 } else { 0 },
                    top_p: if i % 4 == 3 { 0.9 } else { 1.0 },
                    seed: 1000 + i as u64,
                    stop_tokens: if i % 5 == 0 { vec![7, 11] } else { vec![] },
                    speculative: None,
                },
                top_logprobs: i % 3,
            }
        })
        .collect()
}

/// Submits every request at once and checks each against its oracle, and the counters.
fn batched_matches_alone(model: Arc<Model>, requests: Vec<EngineRequest>, config: EngineConfig) {
    let expected: Vec<Vec<Reported>> = requests.iter().map(|r| reference(&model, r)).collect();
    let engine = Engine::new(Arc::clone(&model), config).unwrap();
    let (tx, rx) = channel();
    for (i, r) in requests.iter().enumerate() {
        engine.submit(r.clone(), sink(i, &tx)).unwrap();
    }
    let received = collect(&rx, requests.len());
    for (i, ((got, want), request)) in received.iter().zip(&expected).zip(&requests).enumerate() {
        assert_eq!(got.failed, None, "request {i}");
        assert_eq!(
            got.tokens,
            *want,
            "request {i} (prompt {} tokens, {:?})",
            request.prompt.len(),
            request.params
        );
        let stopped = want
            .last()
            .is_some_and(|t| request.params.stop_tokens.contains(&t.0));
        let reason = if stopped {
            FinishReason::Stop
        } else {
            FinishReason::Length
        };
        assert_eq!(
            got.finished,
            Some((reason, request.prompt.len(), want.len())),
            "request {i}"
        );
    }
    let stats = wait_for(&engine, |s| s.running == 0);
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.requests, requests.len() as u64);
    let generated: usize = expected.iter().map(Vec::len).sum();
    assert_eq!(stats.generated_tokens, generated as u64);
    let prompts: usize = requests.iter().map(|r| r.prompt.len()).sum();
    assert_eq!(stats.prompt_tokens, prompts as u64);
    engine.shutdown();
}

/// Polls the counters until `done` holds (they are updated at the end of a step).
fn wait_for(
    engine: &Engine,
    done: impl Fn(&concord_runtime::engine::EngineStats) -> bool,
) -> concord_runtime::engine::EngineStats {
    let start = Instant::now();
    loop {
        let stats = engine.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "counters stuck at {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn config(max_batch: usize, prefill_chunk: usize) -> EngineConfig {
    EngineConfig {
        max_batch,
        prefill_chunk,
        max_queue: 1024,
    }
}

#[test]
fn demo_batched_and_chunked_equals_each_request_alone() {
    let model = load(&concord_runtime::demo_model_dir(), false);
    let vocab = model.config().vocab_size;
    batched_matches_alone(model, mixed_requests(24, 200, vocab), config(8, 16));
}

#[test]
fn fixture_batched_and_chunked_equals_each_request_alone() {
    let model = load(&fixture("v3_grouped_routing"), false);
    let vocab = model.config().vocab_size;
    batched_matches_alone(model, mixed_requests(12, 100, vocab), config(5, 7));
}

/// Logits of `prompt` fed in chunks of the given sizes (the last one's last row).
fn chunked_logits(model: &Model, prompt: &[u32], chunks: &[usize]) -> Vec<u32> {
    let mut sequence = model.new_sequence(prompt.len()).unwrap();
    let mut at = 0;
    let mut last = Vec::new();
    for &c in chunks {
        let logits = model
            .forward(&mut [&mut sequence], &[&prompt[at..at + c]], LogitRows::Last)
            .unwrap();
        at += c;
        last = logits.per_sequence[0].iter().map(|v| v.to_bits()).collect();
    }
    assert_eq!(at, prompt.len());
    last
}

/// The investigation behind chunked prefill: a chunk of several tokens continuing a cache runs
/// the naive MLA form over every cached key, and gives the bits one whole prefill gives; a
/// lone one-token chunk runs the absorbed decode form, whose bits differ — so the engine never
/// feeds a prompt chunk of one token after the first.
#[test]
fn multi_token_chunks_match_one_prefill_and_a_lone_token_does_not() {
    for dir in [concord_runtime::demo_model_dir(), fixture("v3_grouped_routing")] {
        let model = load(&dir, false);
        let p = prompt(50, 3, model.config().vocab_size);
        let whole = chunked_logits(&model, &p, &[50]);
        for chunks in [&[16, 16, 18][..], &[2, 48], &[7, 7, 7, 7, 7, 7, 8]] {
            assert_eq!(chunked_logits(&model, &p, chunks), whole, "{chunks:?}");
        }
        assert_ne!(
            chunked_logits(&model, &p, &[49, 1]),
            whole,
            "{}: a one-token chunk now matches the prefill form",
            dir.display()
        );
    }
}
