//! An in-process server on the demo model, and an HTTP client for it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use concord_runtime::engine::EngineConfig;
use concord_runtime::text::Tokenizer;
use concord_runtime::{LoadOptions, Model};
use concord_server::{AppState, ServerConfig};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server.
pub struct TestServer {
    pub address: SocketAddr,
    pub state: Arc<AppState>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

pub fn demo_model() -> (Arc<Model>, Tokenizer) {
    let dir = concord_runtime::demo_model_dir();
    let backend = concord_runtime::open_backend("cpu").expect("cpu backend");
    let model = Model::load(&dir, backend, &LoadOptions::default(), &mut |_, _| true)
        .expect("demo model loads");
    let tokenizer = Tokenizer::from_dir(&dir).expect("demo tokenizer");
    (Arc::new(model), tokenizer)
}

impl TestServer {
    /// A server on the demo model with a paged cache of 256 KiB (about 25 blocks of 16 tokens):
    /// small enough that 32 concurrent requests make the engine preempt and recompute.
    pub async fn start() -> TestServer {
        let engine = EngineConfig {
            kv_cache_bytes: Some(1 << 18),
            kv_block_size: 16,
            ..EngineConfig::default()
        };
        Self::start_with(engine, Duration::from_secs(30)).await
    }

    pub async fn start_with(engine: EngineConfig, grace: Duration) -> TestServer {
        let (model, tokenizer) = demo_model();
        let config = ServerConfig {
            served_model_name: "demo".into(),
            engine,
        };
        let state = Arc::new(AppState::new(model, tokenizer, config).expect("engine starts"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(concord_server::serve(
            listener,
            Arc::clone(&state),
            grace,
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            address,
            state,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends SIGINT's equivalent: the shutdown future completes.
    pub fn shut_down(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// POSTs `body` as JSON.
    async fn send(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs `body`; returns the status and the JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self.send(path, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// POSTs a raw body.
    pub async fn post_raw(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs a streaming request; returns the `data:` payloads in order.
    pub async fn post_stream(&self, path: &str, body: &Value) -> Vec<String> {
        let response = self.send(path, body).await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let text = response.text().await.expect("body");
        sse_payloads(&text)
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.expect("sent");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    }

    /// The value of a metric line `name` (exact, labels included) in `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = self.get_text("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The `data:` payloads of an SSE body; every event is exactly `data: …\n\n`.
pub fn sse_payloads(body: &str) -> Vec<String> {
    assert!(body.ends_with("\n\n"), "SSE body ends with a blank line");
    body.split_terminator("\n\n")
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {event:?}"))
                .to_owned()
        })
        .collect()
}

/// The text of a streamed answer (chat deltas' `content` or completions' `text`), its
/// finish_reason and its usage chunk (if any); checks `[DONE]` comes last.
pub fn assemble(payloads: &[String], object: &str) -> (String, String, Option<Value>) {
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let mut text = String::new();
    let mut finish = None;
    let mut usage = None;
    for p in &payloads[..payloads.len() - 1] {
        let chunk: Value = serde_json::from_str(p).expect("chunk is JSON");
        assert_eq!(chunk["object"], object);
        for choice in chunk["choices"].as_array().expect("choices") {
            let piece = if object == "chat.completion.chunk" {
                choice["delta"]["content"].as_str()
            } else {
                choice["text"].as_str()
            };
            text.push_str(piece.unwrap_or(""));
            if let Some(f) = choice["finish_reason"].as_str() {
                assert!(finish.is_none(), "one finish_reason per stream");
                finish = Some(f.to_owned());
            }
        }
        if !chunk["usage"].is_null() {
            assert!(chunk["choices"].as_array().unwrap().is_empty());
            usage = Some(chunk["usage"].clone());
        }
    }
    (text, finish.expect("a finish_reason"), usage)
}
