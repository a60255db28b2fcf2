//! Concurrency, client disconnects, graceful shutdown, and the informational endpoints.

mod common;

use std::time::{Duration, Instant};

use common::{assemble, sse_payloads, TestServer};
use concord_runtime::engine::EngineConfig;
use serde_json::{json, Value};

fn streaming_request(seed: u64) -> Value {
    json!({"prompt": format!("Story number {seed}:"), "max_tokens": 12, "temperature": 0.8,
           "seed": seed, "stream": true, "stream_options": {"include_usage": true}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_streams_equal_the_same_requests_alone() {
    let server = TestServer::start().await;
    let mut alone = Vec::new();
    for seed in 0..32 {
        let payloads = server
            .post_stream("/v1/completions", &streaming_request(seed))
            .await;
        alone.push(assemble(&payloads, "text_completion"));
    }
    let mut tasks = Vec::new();
    for seed in 0..32u64 {
        let client = server.client.clone();
        let url = server.url("/v1/completions");
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .json(&streaming_request(seed))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            sse_payloads(&response.text().await.unwrap())
        }));
    }
    for (seed, task) in tasks.into_iter().enumerate() {
        let together = assemble(&task.await.unwrap(), "text_completion");
        assert_eq!(together, alone[seed], "seed {seed}");
    }
    let stats = server.state.engine.stats();
    assert_eq!(stats.requests, 64);
    assert_eq!(server.metric("concord_requests_total").await, Some(64.0));
    // The 256 KiB cache cannot hold 32 streams at once: some were preempted and recomputed,
    // and their answers still equal the same requests alone.
    eprintln!("{stats:?}");
    assert!(stats.preemptions > 0, "{stats:?}");
    assert!(server.metric("concord_preemptions").await.unwrap_or(0.0) > 0.0);
}

/// Polls until the engine has nothing queued or running.
async fn wait_idle(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = server.state.engine.stats();
        if stats.queued == 0 && stats.running == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the engine never went idle: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_dropping_mid_stream_cancels_its_request() {
    let server = TestServer::start().await;
    let max_tokens = 480;
    let mut response = server
        .client
        .post(server.url("/v1/completions"))
        .json(
            &json!({"prompt": "Once", "max_tokens": max_tokens, "temperature": 0,
                      "stream": true}),
        )
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().expect("a first chunk");
    assert!(first.starts_with(b"data: "));
    drop(response);
    wait_idle(&server).await;
    // The sink saw the receiver gone and the engine cancelled the request.
    assert_eq!(
        server
            .metric("concord_requests_finished_total{reason=\"cancelled\"}")
            .await,
        Some(1.0)
    );
    let generated = server.state.engine.stats().generated_tokens;
    assert!(
        generated < max_tokens as u64,
        "generation stopped early: {generated} tokens"
    );
    assert_eq!(server.state.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_finishes_requests_in_flight_then_stops_accepting() {
    let mut server = TestServer::start_with(EngineConfig::default(), Duration::from_secs(30)).await;
    let mut response = server
        .client
        .post(server.url("/v1/completions"))
        .json(&json!({"prompt": "Once", "max_tokens": 200, "temperature": 0, "stream": true}))
        .send()
        .await
        .unwrap();
    let mut body = String::from_utf8(response.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    server.shut_down();
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let (_, finish, _) = assemble(&sse_payloads(&body), "text_completion");
    assert_eq!(finish, "length", "the request in flight ran to its end");
    let served = server.task.take().unwrap().await.unwrap();
    assert!(served.is_ok());
    assert!(
        reqwest::Client::new()
            .get(server.url("/health"))
            .send()
            .await
            .is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_cancels_what_outlives_the_grace_period() {
    let mut server = TestServer::start_with(EngineConfig::default(), Duration::ZERO).await;
    let mut response = server
        .client
        .post(server.url("/v1/completions"))
        .json(&json!({"prompt": "Once", "max_tokens": 480, "temperature": 0, "stream": true}))
        .send()
        .await
        .unwrap();
    let _ = response.chunk().await.unwrap().unwrap();
    server.shut_down();
    assert!(server.task.take().unwrap().await.unwrap().is_ok());
    drop(response);
    wait_idle(&server).await;
    assert!(server.state.engine.stats().generated_tokens < 480);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn models_health_and_metrics() {
    let server = TestServer::start().await;
    let (status, models) = server.get_text("/v1/models").await;
    assert_eq!(status, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "demo");
    assert_eq!(models["data"][0]["object"], "model");
    assert_eq!(server.get_text("/health").await.0, 200);

    let (_, answer) = server
        .post(
            "/v1/completions",
            &json!({"prompt": "Hello", "max_tokens": 5, "temperature": 0}),
        )
        .await;
    let prompt_tokens = answer["usage"]["prompt_tokens"].as_f64().unwrap();
    let (status, text) = server.get_text("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "# TYPE concord_requests counter",
        "# TYPE concord_generated_tokens counter",
        "# TYPE concord_prompt_tokens counter",
        "# TYPE concord_queue_depth gauge",
        "# TYPE concord_running_requests gauge",
        "# TYPE concord_time_to_first_token_seconds histogram",
        "# TYPE concord_inter_token_latency_seconds histogram",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    assert_eq!(server.metric("concord_requests_total").await, Some(1.0));
    assert_eq!(
        server.metric("concord_generated_tokens_total").await,
        Some(5.0)
    );
    assert_eq!(
        server.metric("concord_prompt_tokens_total").await,
        Some(prompt_tokens)
    );
    assert_eq!(
        server
            .metric("concord_time_to_first_token_seconds_count")
            .await,
        Some(1.0)
    );
    assert_eq!(
        server
            .metric("concord_inter_token_latency_seconds_count")
            .await,
        Some(4.0)
    );
    assert_eq!(server.metric("concord_queue_depth").await, Some(0.0));
}
