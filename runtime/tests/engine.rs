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
        ..LoadOptions::default()
    };
    Arc::new(
        Model::load(dir, backend, &options, &mut |_, _| true)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
    )
}

/// A reproducible prompt of `len` ids below `vocab` (a linear congruential walk).
fn prompt(len: usize, salt: u64, vocab: usize) -> Vec<u32> {
    let mut x = salt
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
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

/// Submits every request at once (request i reports as index i) and receives until all ended.
fn submit_and_collect(engine: &Engine, requests: &[EngineRequest]) -> Vec<Received> {
    let (tx, rx) = channel();
    for (i, r) in requests.iter().enumerate() {
        engine.submit(r.clone(), sink(i, &tx)).unwrap();
    }
    collect(&rx, requests.len())
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
                    stop_at_eos: false,
                    speculative: None,
                    // Every third request with min-p and penalties (history = prompt + output).
                    min_p: if i % 3 == 2 { 0.05 } else { 0.0 },
                    repetition_penalty: if i % 3 == 2 { 1.3 } else { 1.0 },
                    frequency_penalty: if i % 3 == 2 { 0.5 } else { 0.0 },
                    presence_penalty: if i % 3 == 2 { -0.4 } else { 0.0 },
                },
                top_logprobs: i % 3,
            }
        })
        .collect()
}

/// Submits every request at once and checks each against its oracle, and the counters;
/// returns the final counters.
fn batched_matches_alone(
    model: Arc<Model>,
    requests: Vec<EngineRequest>,
    config: EngineConfig,
) -> concord_runtime::engine::EngineStats {
    let expected: Vec<Vec<Reported>> = requests.iter().map(|r| reference(&model, r)).collect();
    let engine = Engine::new(Arc::clone(&model), config).unwrap();
    let received = submit_and_collect(&engine, &requests);
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
    // Blocks come back when the engine drops a finished request, just after its last event.
    let stats = wait_for(&engine, |s| s.running == 0 && s.kv_blocks_used == 0);
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.requests, requests.len() as u64);
    let generated: usize = expected.iter().map(Vec::len).sum();
    assert_eq!(stats.generated_tokens, generated as u64);
    let prompts: usize = requests.iter().map(|r| r.prompt.len()).sum();
    // A paged cache computes less (shared prefixes) or more (preempted requests recomputed).
    if stats.preemptions == 0 {
        assert_eq!(
            stats.prompt_tokens + stats.prefix_cached_tokens,
            prompts as u64
        );
    }
    engine.shutdown();
    stats
}

#[test]
fn a_small_paged_cache_preempts_and_every_request_still_equals_its_run_alone() {
    let model = load(&concord_runtime::demo_model_dir(), false);
    let requests = mixed_requests(16, 120, 500);
    // 80 blocks of 4 tokens: room for about two of the longest requests at once.
    let config = EngineConfig {
        kv_cache_bytes: Some(80 * model.kv_block_bytes(4)),
        kv_block_size: 4,
        ..config(8, 16)
    };
    let stats = batched_matches_alone(model, requests, config);
    assert!(stats.preemptions > 0, "{stats:?}");
    assert_eq!(stats.kv_blocks, 80);
}

#[test]
fn a_shared_system_prompt_is_computed_once_and_changes_no_answer() {
    let model = load(&concord_runtime::demo_model_dir(), false);
    let system = prompt(45, 99, 500);
    let mut requests = mixed_requests(10, 30, 500);
    for r in &mut requests {
        let mut p = system.clone();
        p.extend_from_slice(&r.prompt);
        r.prompt = p;
    }
    // Last (admitted once the system prompt is cached): one token past five full blocks,
    // which must not leave a lone token to compute (it would run the decode form).
    let mut tail = requests[0].clone();
    tail.prompt = system[..41].to_vec();
    requests.push(tail);
    let config = EngineConfig {
        kv_cache_bytes: Some(400 * model.kv_block_bytes(8)),
        kv_block_size: 8,
        ..config(4, 16)
    };
    let stats = batched_matches_alone(model, requests, config);
    assert!(stats.prefix_cached_tokens >= 40, "{stats:?}");
    assert!(stats.kv_blocks_cached > 0, "{stats:?}");
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
        ..EngineConfig::default()
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
            .forward(
                &mut [&mut sequence],
                &[&prompt[at..at + c]],
                LogitRows::Last,
            )
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
    for dir in [
        concord_runtime::demo_model_dir(),
        fixture("v3_grouped_routing"),
    ] {
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

fn greedy(prompt: Vec<u32>, max_new_tokens: usize) -> EngineRequest {
    EngineRequest {
        prompt,
        params: GenerateParams {
            max_new_tokens,
            stop_at_eos: false,
            ..GenerateParams::default()
        },
        top_logprobs: 0,
    }
}

/// `Engine::cancel` mid-stream and a sink returning false both end their request at once with
/// `Cancelled`, free its place in the batch, and leave the others' tokens untouched.
#[test]
fn cancellation_frees_the_request_and_leaves_the_others_alone() {
    let model = load(&concord_runtime::demo_model_dir(), false);
    let vocab = model.config().vocab_size;
    let requests: Vec<EngineRequest> = (0..4)
        .map(|i| greedy(prompt(5 + 9 * i, 40 + i as u64, vocab), 120))
        .collect();
    let expected: Vec<Vec<Reported>> = requests.iter().map(|r| reference(&model, r)).collect();
    let engine = Engine::new(Arc::clone(&model), config(8, 16)).unwrap();
    let (tx, rx) = channel();
    let mut ids: Vec<RequestId> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let s = if i == 1 {
            // Declines the third token: the client went away.
            let tx = tx.clone();
            let mut seen = 0;
            Box::new(move |e: EngineEvent| {
                if matches!(e, EngineEvent::Token { .. }) {
                    seen += 1;
                }
                tx.send((i, e)).is_ok() && seen < 3
            }) as concord_runtime::engine::EventSink
        } else {
            sink(i, &tx)
        };
        ids.push(engine.submit(r.clone(), s).unwrap());
    }
    let mut received: Vec<Received> = (0..requests.len()).map(|_| Received::default()).collect();
    let mut cancelled_at = None;
    while !received.iter().all(Received::ended) {
        let event = rx.recv_timeout(Duration::from_secs(120)).expect("events");
        record(&mut received, event);
        if cancelled_at.is_none() && received[0].tokens.len() == 4 {
            engine.cancel(ids[0]);
            cancelled_at = Some(4);
        }
        if received[0].ended() && received[1].ended() && !received[2].ended() {
            // Both cancelled requests are out of the batch while the others still run.
            let stats = engine.stats();
            assert!(stats.running <= 2, "{stats:?}");
        }
    }
    let (reason, _, completion) = received[0].finished.unwrap();
    assert_eq!(reason, FinishReason::Cancelled);
    assert!((4..120).contains(&completion), "{completion}");
    assert_eq!(received[0].tokens.len(), completion);
    assert_eq!(received[0].tokens[..], expected[0][..completion]);
    assert_eq!(
        received[1].finished,
        Some((FinishReason::Cancelled, requests[1].prompt.len(), 3))
    );
    assert_eq!(received[1].tokens[..], expected[1][..3]);
    for i in 2..4 {
        assert_eq!(received[i].tokens, expected[i], "request {i}");
        assert_eq!(received[i].finished.unwrap().0, FinishReason::Length);
    }
    wait_for(&engine, |s| s.running == 0 && s.queued == 0);
    engine.shutdown();
}

/// Holds the engine thread inside a sink until the test lets it go.
fn blocking_sink(started: Sender<()>, release: Receiver<()>) -> concord_runtime::engine::EventSink {
    let mut first = true;
    Box::new(move |_| {
        if first {
            first = false;
            let _ = started.send(());
            let _ = release.recv_timeout(Duration::from_secs(60));
        }
        true
    })
}

#[test]
fn a_full_queue_refuses_with_unavailable_and_a_cancelled_queued_request_ends() {
    let model = load(&concord_runtime::demo_model_dir(), false);
    let engine = Engine::new(
        Arc::clone(&model),
        EngineConfig {
            max_batch: 1,
            prefill_chunk: 16,
            max_queue: 2,
            ..EngineConfig::default()
        },
    )
    .unwrap();
    let (started_tx, started_rx) = channel();
    let (release_tx, release_rx) = channel();
    engine
        .submit(
            greedy(vec![5, 6, 7], 3),
            blocking_sink(started_tx, release_rx),
        )
        .unwrap();
    started_rx.recv_timeout(Duration::from_secs(60)).unwrap();
    // The engine is inside the first request's sink: these two wait in the queue.
    let (tx, rx) = channel();
    let waiting = engine.submit(greedy(vec![8], 2), sink(0, &tx)).unwrap();
    engine.submit(greedy(vec![9], 2), sink(1, &tx)).unwrap();
    let err = engine
        .submit(greedy(vec![10], 2), sink(2, &tx))
        .unwrap_err();
    match &err {
        concord_core::Error::Unavailable { backend, reason } => {
            assert_eq!(backend, "engine");
            assert!(
                reason.contains("2 requests are already waiting"),
                "{reason}"
            );
        }
        other => panic!("expected Unavailable, got {other}"),
    }
    assert_eq!(engine.stats().queued, 2);
    engine.cancel(waiting);
    release_tx.send(()).unwrap();
    let received = collect(&rx, 2);
    assert_eq!(
        received[0].finished,
        Some((FinishReason::Cancelled, 1, 0)),
        "the cancelled queued request"
    );
    assert!(received[0].tokens.is_empty());
    assert_eq!(received[1].finished.unwrap().0, FinishReason::Length);
    assert_eq!(received[1].tokens.len(), 2);
    engine.shutdown();
}

#[test]
fn a_prompt_outside_the_vocabulary_fails_alone() {
    let model = load(&concord_runtime::demo_model_dir(), false);
    let vocab = model.config().vocab_size;
    let mut requests = mixed_requests(6, 40, vocab);
    requests[2].prompt[0] = vocab as u32;
    let expected: Vec<Option<Vec<Reported>>> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| (i != 2).then(|| reference(&model, r)))
        .collect();
    let engine = Engine::new(Arc::clone(&model), config(8, 16)).unwrap();
    let received = submit_and_collect(&engine, &requests);
    let message = received[2]
        .failed
        .as_deref()
        .expect("the bad request fails");
    assert!(
        message.contains(&format!("token id {vocab} is outside")),
        "{message}"
    );
    assert!(received[2].tokens.is_empty() && received[2].finished.is_none());
    for (i, want) in expected.iter().enumerate() {
        if let Some(want) = want {
            assert_eq!(received[i].failed, None, "request {i}");
            assert_eq!(received[i].tokens, *want, "request {i}");
        }
    }
    engine.shutdown();
}

/// A speculative request runs alone through `Model::generate` (greedy speculative = plain
/// greedy); the batched requests around it are unaffected.
#[test]
fn a_speculative_request_runs_alone_between_batched_ones() {
    let model = load(&concord_runtime::demo_model_dir(), true);
    let vocab = model.config().vocab_size;
    let mut requests = mixed_requests(5, 30, vocab);
    let mut speculative = greedy(prompt(12, 99, vocab), 10);
    speculative.params.speculative = Some(concord_runtime::SpeculativeMtp::default());
    requests.insert(2, speculative);
    let mut plain = requests[2].clone();
    plain.params.speculative = None;
    let expected: Vec<Vec<Reported>> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| reference(&model, if i == 2 { &plain } else { r }))
        .collect();
    let engine = Engine::new(Arc::clone(&model), config(8, 16)).unwrap();
    let received = submit_and_collect(&engine, &requests);
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(received[i].failed, None, "request {i}");
        assert_eq!(received[i].tokens, *want, "request {i}");
    }
    engine.shutdown();
}

/// Shutdown stops taking requests but finishes the running and queued ones.
#[test]
fn shutdown_finishes_running_and_queued_requests() {
    let model = load(&concord_runtime::demo_model_dir(), false);
    let vocab = model.config().vocab_size;
    let requests = mixed_requests(7, 30, vocab);
    let expected: Vec<Vec<Reported>> = requests.iter().map(|r| reference(&model, r)).collect();
    let engine = Engine::new(Arc::clone(&model), config(2, 4)).unwrap();
    let (tx, rx) = channel();
    for (i, r) in requests.iter().enumerate() {
        engine.submit(r.clone(), sink(i, &tx)).unwrap();
    }
    engine.shutdown();
    // Every sink is gone with the engine thread: what follows was reported before shutdown
    // returned.
    drop(tx);
    let received = collect(&rx, requests.len());
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(received[i].tokens, *want, "request {i}");
        assert!(received[i].finished.is_some(), "request {i}");
    }
}

/// `GenerateParams::default()` ends at the model's EOS, through `Model::generate` and through
/// the engine alike; `stop_at_eos: false` runs on to the budget. The oracle is the same run
/// with EOS stopping off (what the default did before), cut just after the first id that
/// config.json names as `eos_token_id`. At temperature 10, seed 22, the demo model draws its
/// EOS (1) as the 18th token (`concord generate --ids 0,305,303 --temperature 10 --seed 22
/// --ignore-eos --emit ids`).
#[test]
fn default_params_stop_at_the_models_eos() {
    let dir = concord_runtime::demo_model_dir();
    let config_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let eos = config_json["eos_token_id"].as_u64().unwrap() as u32;
    let model = load(&dir, false);
    let prompt = vec![0, 305, 303];
    let sampled = |stop_at_eos| GenerateParams {
        max_new_tokens: 60,
        temperature: 10.0,
        seed: 22,
        stop_at_eos,
        ..GenerateParams::default()
    };
    let run_on: Vec<u32> = model
        .generate(&prompt, sampled(false))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(run_on.len(), 60, "stop_at_eos: false runs to the budget");
    let first_eos = run_on.iter().position(|&t| t == eos).expect("EOS drawn");
    assert_eq!(first_eos, 17);
    let want = &run_on[..=first_eos];

    assert!(GenerateParams::default().stop_at_eos);
    let by_default: Vec<u32> = model
        .generate(&prompt, sampled(true))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(by_default, want, "Model::generate");

    let engine = Engine::new(Arc::clone(&model), config(1, 16)).unwrap();
    let request = EngineRequest {
        prompt,
        params: sampled(true),
        top_logprobs: 0,
    };
    let received = submit_and_collect(&engine, &[request]);
    let ids: Vec<u32> = received[0].tokens.iter().map(|t| t.0).collect();
    assert_eq!(ids, want, "engine");
    assert_eq!(
        received[0].finished.as_ref().map(|f| f.0),
        Some(FinishReason::Stop)
    );
}
