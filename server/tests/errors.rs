//! Error answers: OpenAI's shape and the right status.

mod common;

use std::time::Duration;

use common::TestServer;
use concord_runtime::engine::EngineConfig;
use serde_json::{json, Value};

/// Checks OpenAI's error shape; returns the error object.
fn error_object(body: &Value) -> &Value {
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(error.as_object().unwrap().contains_key("param"), "{body}");
    assert!(error.as_object().unwrap().contains_key("code"), "{body}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_and_mistyped_bodies_are_400_naming_the_field() {
    let server = TestServer::start().await;
    let response = server
        .post_raw("/v1/completions", "{\"prompt\": \"hi\"")
        .await;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(error_object(&body)["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    for (endpoint, request, field) in [
        (
            "/v1/completions",
            json!({"prompt": "hi", "max_tokens": "ten"}),
            "max_tokens",
        ),
        ("/v1/completions", json!({"prompt": 3}), "prompt"),
        (
            "/v1/completions",
            json!({"prompt": "hi", "temperature": "hot"}),
            "temperature",
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": 1, "content": "x"}]}),
            "messages[0].role",
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}], "logprobs": 2}),
            "logprobs",
        ),
        (
            "/v1/completions",
            json!({"prompt": "hi", "logprobs": true}),
            "logprobs",
        ),
        (
            "/v1/completions",
            json!({"prompt": "hi", "stop": 5}),
            "stop",
        ),
        ("/v1/chat/completions", json!({"messages": []}), "messages"),
        ("/v1/completions", json!({"max_tokens": 3}), "prompt"),
        ("/v1/completions", json!({"prompt": "hi", "n": 2}), "n"),
        (
            "/v1/completions",
            json!({"prompt": "hi", "temperature": -1}),
            "temperature",
        ),
        (
            "/v1/completions",
            json!({"prompt": "hi", "top_p": 0}),
            "top_p",
        ),
        (
            "/v1/completions",
            json!({"prompt": "hi", "max_tokens": 0}),
            "max_tokens",
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 30, "logprobs": true}),
            "top_logprobs",
        ),
    ] {
        let (status, body) = server.post(endpoint, &request).await;
        assert_eq!(status, 400, "{request} → {body}");
        let error = error_object(&body);
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["param"], field, "{request} → {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sampling_fields_work_in_range_and_are_400_naming_the_field_outside() {
    let server = TestServer::start().await;
    // Every field set at once, inside its range (vLLM/OpenAI: min_p [0, 1], presence and
    // frequency [−2, 2], repetition > 0), sampled and greedy.
    for temperature in [0.8, 0.0] {
        let request = json!({"prompt": "hi there, hi there", "max_tokens": 8,
            "temperature": temperature, "seed": 7, "min_p": 0.05, "presence_penalty": 1.5,
            "frequency_penalty": -0.5, "repetition_penalty": 1.3});
        let (status, body) = server.post("/v1/completions", &request).await;
        assert_eq!(status, 200, "{request} → {body}");
        assert!(
            body["usage"]["completion_tokens"].as_u64().unwrap() > 0,
            "{body}"
        );
    }
    for (field, outside) in [
        ("min_p", 1.5),
        ("min_p", -0.1),
        ("presence_penalty", 2.5),
        ("frequency_penalty", -2.01),
        ("repetition_penalty", 0.0),
        ("repetition_penalty", -1.0),
    ] {
        let mut request = json!({"prompt": "hi", "max_tokens": 1, "temperature": 0});
        request[field] = json!(outside);
        let (status, body) = server.post("/v1/completions", &request).await;
        assert_eq!(status, 400, "{field} {outside} → {body}");
        let error = error_object(&body);
        assert_eq!(error["param"], field);
        assert!(error["message"].as_str().unwrap().contains(field), "{body}");
    }
    // Unknown fields are ignored.
    let (status, _) = server
        .post(
            "/v1/completions",
            &json!({"prompt": "hi", "max_tokens": 1, "user": "x", "whatever": [1]}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_model_is_404() {
    let server = TestServer::start().await;
    let (status, body) = server
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(status, 404);
    let error = error_object(&body);
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["param"], "model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prompt_longer_than_the_context_is_400_with_the_limit() {
    let server = TestServer::start().await;
    // The demo's context is 512 positions (config.json max_position_embeddings).
    let long = "word ".repeat(600);
    let (status, body) = server
        .post("/v1/completions", &json!({"prompt": long, "max_tokens": 1}))
        .await;
    assert_eq!(status, 400);
    let error = error_object(&body);
    assert_eq!(error["code"], "context_length_exceeded");
    assert_eq!(error["param"], "prompt");
    assert!(error["message"].as_str().unwrap().contains("512"), "{body}");
    let (status, body) = server
        .post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": long}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_object(&body)["param"], "messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_queue_is_503_with_retry_after() {
    // No room in the queue at all: every request is refused.
    let engine = EngineConfig {
        max_queue: 0,
        ..EngineConfig::default()
    };
    let server = TestServer::start_with(engine, Duration::from_secs(5)).await;
    let response = server
        .client
        .post(server.url("/v1/completions"))
        .json(&json!({"prompt": "hi", "max_tokens": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_object(&body)["code"], "server_overloaded");
}
