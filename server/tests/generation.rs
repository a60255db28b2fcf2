//! Chat and completions, whole and streamed, against `Model::generate` and the tokenizer.

mod common;

use common::{assemble, TestServer};
use concord_runtime::GenerateParams;
use serde_json::{json, Value};

/// The demo model's greedy continuation of `prompt` (with BOS), by `Model::generate`: the ids
/// (EOS excluded) and their text.
fn reference_greedy(
    server: &TestServer,
    prompt: &str,
    max_new_tokens: usize,
) -> (Vec<u32>, String) {
    let model = server.state.engine.model();
    let tokenizer = &server.state.tokenizer;
    let ids = tokenizer.encode(prompt, true).unwrap();
    let eos = model.config().eos_token_ids.clone();
    let params = GenerateParams {
        max_new_tokens,
        temperature: 0.0,
        stop_tokens: eos.clone(),
        ..GenerateParams::default()
    };
    let generated: Vec<u32> = model
        .generate(&ids, params)
        .unwrap()
        .map(|t| t.unwrap())
        .filter(|t| !eos.contains(t))
        .collect();
    let text = tokenizer.decode(&generated, true);
    (generated, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn greedy_completion_equals_model_generate() {
    let server = TestServer::start().await;
    let (ids, text) = reference_greedy(&server, "Once upon a time", 24);
    let prompt_len = server
        .state
        .tokenizer
        .encode("Once upon a time", true)
        .unwrap()
        .len();
    let (status, body) = server
        .post(
            "/v1/completions",
            &json!({"model": "demo", "prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], "demo");
    assert_eq!(body["choices"][0]["text"], text);
    let finish = if ids.len() < 24 { "stop" } else { "length" };
    assert_eq!(body["choices"][0]["finish_reason"], finish);
    assert_eq!(body["usage"]["prompt_tokens"], prompt_len);
    assert_eq!(body["usage"]["completion_tokens"], 24);
    assert_eq!(body["usage"]["total_tokens"], prompt_len + 24);

    // Streamed: the same text, in chunks, with the usage chunk when asked for.
    let payloads = server
        .post_stream(
            "/v1/completions",
            &json!({"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0,
                    "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
    let (streamed, finish_streamed, usage) = assemble(&payloads, "text_completion");
    assert_eq!(streamed, text);
    assert_eq!(finish_streamed, finish);
    assert_eq!(usage.expect("usage chunk"), body["usage"]);
    assert!(payloads.len() > 3, "streamed in several chunks");

    // Without include_usage there is no usage chunk.
    let payloads = server
        .post_stream(
            "/v1/completions",
            &json!({"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0, "stream": true}),
        )
        .await;
    assert!(assemble(&payloads, "text_completion").2.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_whole_and_streamed() {
    let server = TestServer::start().await;
    let messages = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]);
    let expected_prompt = server
        .state
        .tokenizer
        .apply_chat(
            &[
                concord_runtime::text::ChatMessage::system("Be brief."),
                concord_runtime::text::ChatMessage::user("Hello there"),
            ],
            true,
        )
        .unwrap();
    // The reference: Model::generate on the chat-templated prompt.
    let model = server.state.engine.model();
    let eos = model.config().eos_token_ids.clone();
    let reference: Vec<u32> = model
        .generate(
            &expected_prompt,
            GenerateParams {
                max_new_tokens: 16,
                temperature: 0.0,
                stop_tokens: eos.clone(),
                ..GenerateParams::default()
            },
        )
        .unwrap()
        .map(|t| t.unwrap())
        .filter(|t| !eos.contains(t))
        .collect();
    let reference_text = server.state.tokenizer.decode(&reference, true);

    let request = json!({"model": "demo", "messages": messages, "max_completion_tokens": 16, "temperature": 0});
    let (status, body) = server.post("/v1/chat/completions", &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], reference_text);
    assert_eq!(body["usage"]["prompt_tokens"], expected_prompt.len());
    assert!(body["choices"][0]["logprobs"].is_null());

    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    streaming["stream_options"] = json!({"include_usage": true});
    let payloads = server.post_stream("/v1/chat/completions", &streaming).await;
    let first: Value = serde_json::from_str(&payloads[0]).unwrap();
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let (text, finish, usage) = assemble(&payloads, "chat.completion.chunk");
    assert_eq!(text, reference_text);
    assert_eq!(
        finish,
        body["choices"][0]["finish_reason"].as_str().unwrap()
    );
    assert_eq!(usage.unwrap(), body["usage"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seeded_sampling_is_reproducible() {
    let server = TestServer::start().await;
    let request = |seed: u64| {
        json!({"prompt": "The weather today", "max_tokens": 32, "temperature": 1.0, "top_p": 0.95,
               "top_k": 50, "seed": seed})
    };
    let a = server.post("/v1/completions", &request(7)).await.1;
    let b = server.post("/v1/completions", &request(7)).await.1;
    let c = server.post("/v1/completions", &request(8)).await.1;
    assert_eq!(a["choices"][0]["text"], b["choices"][0]["text"]);
    assert_ne!(
        a["choices"][0]["text"], c["choices"][0]["text"],
        "another seed samples another text"
    );
    // Sampling, not greedy.
    let greedy = reference_greedy(&server, "The weather today", 32).1;
    assert_ne!(a["choices"][0]["text"], greedy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_strings_match_across_token_boundaries() {
    let server = TestServer::start().await;
    let prompt = "Once upon a time";
    let (ids, full) = reference_greedy(&server, prompt, 40);
    let texts: Vec<String> = ids
        .iter()
        .map(|&id| server.state.tokenizer.decode(&[id], true))
        .collect();
    // A stop string made of the last character of one token and the first of the next.
    let i = (2..texts.len() - 1)
        .find(|&i| {
            let (a, b) = (&texts[i], &texts[i + 1]);
            !a.is_empty() && !b.is_empty() && !a.ends_with(' ')
        })
        .expect("two adjacent tokens with text");
    let stop: String = texts[i]
        .chars()
        .last()
        .into_iter()
        .chain(texts[i + 1].chars().next())
        .collect();
    let expected = &full[..full.find(&stop).unwrap()];

    let body = json!({"prompt": prompt, "max_tokens": 40, "temperature": 0,
                      "stop": ["never-appears-zzz", stop.clone()]});
    let (status, answer) = server.post("/v1/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["choices"][0]["text"], expected, "stop {stop:?}");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert!(answer["usage"]["completion_tokens"].as_u64().unwrap() < 40);

    let mut streaming = body.clone();
    streaming["stream"] = json!(true);
    let (text, finish, _) = assemble(
        &server.post_stream("/v1/completions", &streaming).await,
        "text_completion",
    );
    assert_eq!(text, expected);
    assert_eq!(finish, "stop");

    // A single string works too, in chat as well.
    let chat = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 30,
                      "temperature": 0, "stop": stop});
    let (status, answer) = server.post("/v1/chat/completions", &chat).await;
    assert_eq!(status, 200);
    assert!(!answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains(&stop));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logprobs_have_openai_shapes() {
    let server = TestServer::start().await;
    let (ids, _) = reference_greedy(&server, "It was the best", 6);
    let (_, chat) = server
        .post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6,
                    "temperature": 0, "logprobs": true, "top_logprobs": 3}),
        )
        .await;
    let content = chat["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert_eq!(content.len(), 6);
    let mut joined = String::new();
    for entry in content {
        let token = entry["token"].as_str().unwrap();
        joined.push_str(token);
        assert_eq!(entry["bytes"], json!(token.as_bytes()));
        let lp = entry["logprob"].as_f64().unwrap();
        assert!(lp <= 0.0);
        let top = entry["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        // Greedy: the chosen token is the most likely one.
        assert_eq!(top[0]["token"], entry["token"]);
        assert_eq!(top[0]["logprob"], entry["logprob"]);
        let values: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] >= w[1]), "best first");
        // Probabilities of the alternatives sum to at most 1.
        assert!(values.iter().map(|v| v.exp()).sum::<f64>() <= 1.0 + 1e-5);
    }
    assert_eq!(joined, chat["choices"][0]["message"]["content"]);

    let (_, completion) = server
        .post(
            "/v1/completions",
            &json!({"prompt": "It was the best", "max_tokens": 6, "temperature": 0, "logprobs": 2}),
        )
        .await;
    let lp = &completion["choices"][0]["logprobs"];
    let tokens: Vec<String> = ids
        .iter()
        .map(|&id| server.state.tokenizer.decode(&[id], false))
        .collect();
    assert_eq!(lp["tokens"], json!(tokens));
    assert_eq!(lp["token_logprobs"].as_array().unwrap().len(), 6);
    let offsets: Vec<usize> = tokens
        .iter()
        .scan(0, |at, t| {
            let o = *at;
            *at += t.len();
            Some(o)
        })
        .collect();
    assert_eq!(lp["text_offset"], json!(offsets));
    for (i, top) in lp["top_logprobs"].as_array().unwrap().iter().enumerate() {
        let top = top.as_object().unwrap();
        assert!(!top.is_empty() && top.len() <= 2);
        assert_eq!(top[&tokens[i]], lp["token_logprobs"][i]);
    }
    // Without logprobs: null.
    let (_, plain) = server
        .post("/v1/completions", &json!({"prompt": "It", "max_tokens": 2}))
        .await;
    assert!(plain["choices"][0]["logprobs"].is_null());
}
