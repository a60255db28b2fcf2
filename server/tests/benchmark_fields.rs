//! What a serving benchmark relies on: `ignore_eos` runs a request to `max_tokens`, and a
//! stream carries one chunk per generated token (so time to first token and inter-token
//! latency can be read off the chunks), text or not.

mod common;

use common::{assemble, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ignore_eos_generates_past_the_end_of_sequence_to_max_tokens() {
    let server = TestServer::start().await;
    let max_tokens = 160;
    let request = |seed: u64, ignore_eos: bool| {
        json!({"prompt": "Once upon a time", "max_tokens": max_tokens, "temperature": 2.0,
               "seed": seed, "ignore_eos": ignore_eos})
    };
    // A seed whose sample draws the end-of-sequence token before max_tokens.
    let mut stopped = None;
    for seed in 0..64 {
        let (status, body) = server.post("/v1/completions", &request(seed, false)).await;
        assert_eq!(status, 200, "{body}");
        if body["choices"][0]["finish_reason"] == "stop" {
            stopped = Some((seed, body));
            break;
        }
    }
    let (seed, stopped) = stopped.expect("a seed among 64 that samples EOS within 160 tokens");
    assert!(stopped["usage"]["completion_tokens"].as_u64().unwrap() < max_tokens);

    let (status, body) = server.post("/v1/completions", &request(seed, true)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "length", "{body}");
    assert_eq!(body["usage"]["completion_tokens"], max_tokens);
    // The same draws up to the EOS (a token without text), then more.
    let before = stopped["choices"][0]["text"].as_str().unwrap();
    let after = body["choices"][0]["text"].as_str().unwrap();
    assert!(
        after.starts_with(before) && after.len() > before.len(),
        "{before:?} then {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_carries_one_chunk_per_generated_token() {
    let server = TestServer::start().await;
    let max_tokens = 64;
    // Stop strings that never complete but whose first characters are common: text ending in
    // "e" or " " is held back a token, so some tokens release no text.
    let held_back = ["e\u{0}", " \u{0}"];
    for (endpoint, body, object) in [
        (
            "/v1/completions",
            json!({"prompt": "Once upon a time", "max_tokens": max_tokens, "temperature": 1.5,
                   "seed": 7, "ignore_eos": true, "stream": true, "stop": held_back}),
            "text_completion",
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": max_tokens,
                   "temperature": 1.5, "seed": 7, "ignore_eos": true, "stream": true, "stop": held_back}),
            "chat.completion.chunk",
        ),
    ] {
        let payloads = server.post_stream(endpoint, &body).await;
        let (_, finish, _) = assemble(&payloads, object);
        assert_eq!(finish, "length");
        let token_chunks = payloads[..payloads.len() - 1]
            .iter()
            .map(|p| serde_json::from_str::<serde_json::Value>(p).unwrap())
            .filter(|chunk| {
                let choice = &chunk["choices"][0];
                // Chat's first chunk names the role, before any token.
                choice["finish_reason"].is_null()
                    && choice["delta"]["role"].is_null()
                    && (choice["text"].is_string() || choice["delta"]["content"].is_string())
            })
            .count();
        assert_eq!(token_chunks, max_tokens, "{endpoint}: {payloads:?}");
    }
}
