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
async fn unsupported_sampling_fields_are_400_unless_neutral() {
    let server = TestServer::start().await;
    for (field, neutral, other) in [
        ("min_p", 0.0, 0.1),
        ("presence_penalty", 0.0, 0.5),
        ("frequency_penalty", 0.0, -0.5),
        ("repetition_penalty", 1.0, 1.1),
    ] {
        let mut request = json!({"prompt": "hi", "max_tokens": 1, "temperature": 0});
        request[field] = json!(neutral);
        assert_eq!(
            server.post("/v1/completions", &request).await.0,
            200,
            "{field} neutral"
        );
        request[field] = json!(other);
        let (status, body) = server.post("/v1/completions", &request).await;
        assert_eq!(status, 400, "{field}");
        let error = error_object(&body);
        assert_eq!(error["param"], field);
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("not supported yet"));
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
