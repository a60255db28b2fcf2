//! Aggregate decode throughput of the serving engine on the demo model with 1, 8 and 32
//! concurrent greedy requests (figures to read, not a benchmark with assertions).
//!
//! `cargo run --release -p concord-runtime --example engine_throughput [backend]`

use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use concord_runtime::engine::{Engine, EngineConfig, EngineEvent, EngineRequest};
use concord_runtime::{GenerateParams, LoadOptions, Model};

const PROMPT_TOKENS: usize = 16;
const NEW_TOKENS: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend_name = std::env::args().nth(1).unwrap_or_else(|| "cpu".into());
    let backend = concord_runtime::open_backend(&backend_name)?;
    let options = LoadOptions {
        precision: None,
        max_positions: None,
        mtp: false,
        parallel: None,
    };
    let dir = concord_runtime::demo_model_dir();
    let model = Arc::new(Model::load(&dir, backend, &options, &mut |_, _| true)?);
    let vocab = model.config().vocab_size as u32;
    println!("backend {backend_name}, prompt {PROMPT_TOKENS} tokens, {NEW_TOKENS} new tokens each");
    for concurrent in [1usize, 8, 32] {
        let engine = Engine::new(
            Arc::clone(&model),
            EngineConfig {
                max_batch: 32,
                ..EngineConfig::default()
            },
        )?;
        let (tx, rx) = channel::<(usize, EngineEvent)>();
        let start = Instant::now();
        for i in 0..concurrent {
            let prompt = (0..PROMPT_TOKENS)
                .map(|t| (i * 31 + t * 7) as u32 % vocab)
                .collect();
            let request = EngineRequest {
                prompt,
                params: GenerateParams {
                    max_new_tokens: NEW_TOKENS,
                    ..GenerateParams::default()
                },
                top_logprobs: 0,
            };
            let tx = tx.clone();
            engine.submit(request, Box::new(move |e| tx.send((i, e)).is_ok()))?;
        }
        let mut first_tokens = vec![false; concurrent];
        let mut all_started = None;
        let (mut tokens, mut finished) = (0usize, 0usize);
        while finished < concurrent {
            match rx.recv_timeout(Duration::from_secs(600))? {
                (i, EngineEvent::Token { .. }) => {
                    tokens += 1;
                    first_tokens[i] = true;
                    if all_started.is_none() && first_tokens.iter().all(|&f| f) {
                        all_started = Some((Instant::now(), tokens));
                    }
                }
                (_, EngineEvent::Finished { .. }) => finished += 1,
                (_, EngineEvent::Failed(m)) => return Err(m.into()),
            }
        }
        let total = start.elapsed();
        let (decode_start, before) = all_started.unwrap_or((start, 0));
        let decode = decode_start.elapsed();
        println!(
            "{concurrent:>3} concurrent: {:>8.1} decode tokens/s ({} tokens in {:.3} s after every \
             prefill), {:>8.1} tokens/s end to end ({tokens} in {:.3} s)",
            (tokens - before) as f64 / decode.as_secs_f64(),
            tokens - before,
            decode.as_secs_f64(),
            tokens as f64 / total.as_secs_f64(),
            total.as_secs_f64(),
        );
        engine.shutdown();
    }
    Ok(())
}
