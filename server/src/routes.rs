//! The endpoints, and the checks that turn an OpenAI request into an engine request.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_runtime::text::ChatMessage;
use concord_runtime::GenerateParams;
use serde_json::Value;

use crate::error::ApiError;
use crate::generation::{Generation, Output, Prepared, TokenLogprob};
use crate::openai::TopLogprobMap;
use crate::openai::{
    ChatChoice, ChatCompletion, ChatLogprobs, ChatMessageOut, ChatTokenLogprob, ChatTopLogprob,
    Completion, CompletionChoice, CompletionLogprobs, GenerationRequest, MessageContent, ModelCard,
    ModelList,
};
use crate::server::{unix_seconds, AppState};
use crate::sse;

/// Most alternatives per token (OpenAI's limit for chat).
const MAX_TOP_LOGPROBS: u64 = 20;
/// Completions' `max_tokens` when not given (OpenAI's default).
const COMPLETIONS_DEFAULT_MAX_TOKENS: usize = 16;

/// The router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Which endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completions,
}

/// Per-response facts the answer shapes need.
#[derive(Debug, Clone)]
pub struct AnswerContext {
    /// `chatcmpl-…` / `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model id.
    pub model: String,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
}

async fn health() -> &'static str {
    "ok"
}

async fn models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: vec![ModelCard {
            id: state.model_name.clone(),
            object: "model",
            created: state.created,
            owned_by: "concord",
            max_model_len: state.max_positions,
        }],
    })
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state.metrics.render(&state.engine.stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn chat_completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    answer(state, &body, Endpoint::Chat)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    answer(state, &body, Endpoint::Completions)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn answer(
    state: Arc<AppState>,
    body: &[u8],
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let request = parse_body(body)?;
    let stream = request.stream.unwrap_or(false);
    let include_usage = request
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let prepared = prepare(&state, request, endpoint)?;
    let prefix = match endpoint {
        Endpoint::Chat => "chatcmpl",
        Endpoint::Completions => "cmpl",
    };
    let generation = Generation::start(&state, prepared)?;
    let context = AnswerContext {
        id: format!("{prefix}-{}", unique_suffix()),
        created: unix_seconds(),
        model: state.model_name.clone(),
        include_usage,
    };
    if stream {
        return Ok(sse::stream(generation, context, endpoint));
    }
    whole_answer(generation, context, endpoint).await
}

/// A request id suffix: time and a counter, unique within the process.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Parses the body, naming the field at fault.
pub fn parse_body(body: &[u8]) -> Result<GenerationRequest, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: Result<GenerationRequest, _> = serde_path_to_error::deserialize(&mut de);
    let request = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::malformed_body(format!("the request body is not valid JSON: {inner}"))
        } else {
            ApiError::invalid(path.clone(), format!("{path}: {inner}"))
        }
    })?;
    de.end().map_err(|e| {
        ApiError::malformed_body(format!("the request body is not valid JSON: {e}"))
    })?;
    Ok(request)
}

/// `value` (or `default` when absent) if it lies in `[low, high]`, else a 400 naming `field`.
fn sampling_field(
    field: &str,
    value: Option<f32>,
    default: f32,
    (low, high): (f32, f32),
    meaning: &str,
) -> Result<f32, ApiError> {
    let v = value.unwrap_or(default);
    if (low..=high).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be in [{low}, {high}] ({meaning}); got {v}"),
        ))
    }
}

/// Checks `request` and builds the engine request.
pub fn prepare(
    state: &AppState,
    request: GenerationRequest,
    endpoint: Endpoint,
) -> Result<Prepared, ApiError> {
    if let Some(model) = &request.model {
        if *model != state.model_name {
            return Err(ApiError::unknown_model(model, &state.model_name));
        }
    }
    if let Some(n) = request.n {
        if n != 1 {
            return Err(ApiError::invalid(
                "n",
                format!("n must be 1 (one choice per request); got {n}"),
            ));
        }
    }
    let min_p = sampling_field("min_p", request.min_p, 0.0, (0.0, 1.0), "0 = off")?;
    let presence_penalty = sampling_field(
        "presence_penalty",
        request.presence_penalty,
        0.0,
        (-2.0, 2.0),
        "0 = off",
    )?;
    let frequency_penalty = sampling_field(
        "frequency_penalty",
        request.frequency_penalty,
        0.0,
        (-2.0, 2.0),
        "0 = off",
    )?;
    let repetition_penalty = request.repetition_penalty.unwrap_or(1.0);
    if !(repetition_penalty > 0.0 && repetition_penalty.is_finite()) {
        return Err(ApiError::invalid(
            "repetition_penalty",
            format!(
                "repetition_penalty must be a finite number > 0 (1 = off); got {repetition_penalty}"
            ),
        ));
    }
    let temperature = request.temperature.unwrap_or(1.0);
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(ApiError::invalid(
            "temperature",
            format!("temperature must be a finite number ≥ 0 (0 = greedy); got {temperature}"),
        ));
    }
    let top_p = request.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            "top_p",
            format!("top_p must be in (0, 1]; got {top_p}"),
        ));
    }
    let top_k = match request.top_k {
        None | Some(-1) => 0,
        Some(k) => usize::try_from(k).map_err(|_| {
            ApiError::invalid("top_k", format!("top_k must be ≥ 0 (or -1 = all); got {k}"))
        })?,
    };
    let logprobs = read_logprobs(&request, endpoint)?;
    let (prompt, prompt_field) = match endpoint {
        Endpoint::Chat => (chat_prompt(state, &request)?, "messages"),
        Endpoint::Completions => {
            let text = request.prompt.as_deref().ok_or_else(|| {
                ApiError::invalid("prompt", "prompt is required (a string)".to_owned())
            })?;
            let ids = state
                .tokenizer
                .encode(text, true)
                .map_err(|e| ApiError::invalid("prompt", e.to_string()))?;
            (ids, "prompt")
        }
    };
    if prompt.is_empty() {
        return Err(ApiError::invalid(prompt_field, "the prompt has no tokens"));
    }
    if prompt.len() >= state.max_positions {
        return Err(ApiError::context_exceeded(
            prompt_field,
            prompt.len(),
            state.max_positions,
        ));
    }
    let room = state.max_positions - prompt.len();
    let (max_field, max_tokens) = match (endpoint, request.max_completion_tokens) {
        (Endpoint::Chat, Some(m)) => ("max_completion_tokens", Some(m)),
        _ => ("max_tokens", request.max_tokens),
    };
    let max_new_tokens = match max_tokens {
        Some(0) => {
            return Err(ApiError::invalid(
                max_field,
                format!("{max_field} must be at least 1"),
            ))
        }
        Some(m) => (m as usize).min(room),
        None if endpoint == Endpoint::Chat => room,
        None => COMPLETIONS_DEFAULT_MAX_TOKENS.min(room),
    };
    let seed = request.seed.unwrap_or_else(|| {
        // No seed: a fresh one per request, as OpenAI samples.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    Ok(Prepared {
        prompt,
        params: GenerateParams {
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            min_p,
            presence_penalty,
            frequency_penalty,
            repetition_penalty,
            seed,
            stop_tokens: if request.ignore_eos.unwrap_or(false) {
                Vec::new()
            } else {
                state.eos.clone()
            },
            stop_at_eos: false,
            speculative: None,
        },
        logprobs,
        stops: request.stop.map(|s| s.into_vec()).unwrap_or_default(),
    })
}

/// Chat: `logprobs` (bool) with `top_logprobs` (0..=20); completions: `logprobs` (0..=20).
fn read_logprobs(
    request: &GenerationRequest,
    endpoint: Endpoint,
) -> Result<Option<usize>, ApiError> {
    let top_range = |field: &str, v: u64| {
        if v > MAX_TOP_LOGPROBS {
            Err(ApiError::invalid(
                field,
                format!("{field} must be between 0 and {MAX_TOP_LOGPROBS}; got {v}"),
            ))
        } else {
            Ok(v as usize)
        }
    };
    match endpoint {
        Endpoint::Chat => {
            let wanted = match &request.logprobs {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(ApiError::invalid(
                        "logprobs",
                        format!("logprobs must be a boolean for chat completions; got {other}"),
                    ))
                }
            };
            match (wanted, request.top_logprobs) {
                (true, top) => Ok(Some(top_range("top_logprobs", top.unwrap_or(0).into())?)),
                (false, Some(_)) => Err(ApiError::invalid(
                    "top_logprobs",
                    "top_logprobs needs logprobs: true",
                )),
                (false, None) => Ok(None),
            }
        }
        Endpoint::Completions => match &request.logprobs {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) => Ok(Some(top_range("logprobs", v)?)),
                None => Err(ApiError::invalid(
                    "logprobs",
                    format!("logprobs must be an integer between 0 and {MAX_TOP_LOGPROBS}; got {n}"),
                )),
            },
            Some(other) => Err(ApiError::invalid(
                "logprobs",
                format!(
                    "logprobs must be an integer between 0 and {MAX_TOP_LOGPROBS} for completions; got {other}"
                ),
            )),
        },
    }
}

fn chat_prompt(state: &AppState, request: &GenerationRequest) -> Result<Vec<u32>, ApiError> {
    let messages = request
        .messages
        .as_ref()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::invalid("messages", "messages is required (a non-empty list)"))?;
    let mut converted = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let content = match &m.content {
            None => String::new(),
            Some(MessageContent::Text(t)) => t.clone(),
            Some(MessageContent::Parts(parts)) => {
                let mut text = String::new();
                for (j, part) in parts.iter().enumerate() {
                    match (part.kind.as_str(), &part.text) {
                        ("text", Some(t)) => text.push_str(t),
                        (kind, _) => {
                            return Err(ApiError::invalid(
                                format!("messages[{i}].content[{j}]"),
                                format!("only text content parts are supported; got '{kind}'"),
                            ))
                        }
                    }
                }
                text
            }
        };
        converted.push(ChatMessage::new(m.role.clone(), content));
    }
    state
        .tokenizer
        .apply_chat(&converted, true)
        .map_err(|e| ApiError::invalid("messages", e.to_string()))
}

/// Collects a whole answer.
async fn whole_answer(
    mut generation: Generation,
    context: AnswerContext,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let mut text = String::new();
    let mut logprobs: Vec<TokenLogprob> = Vec::new();
    while let Some(out) = generation.next().await {
        match out? {
            Output::Delta {
                text: piece,
                logprobs: lp,
            } => {
                text.push_str(&piece);
                logprobs.extend(lp);
            }
            Output::Done {
                finish_reason,
                usage,
            } => {
                let wants_logprobs = generation.wants_logprobs();
                let response = match endpoint {
                    Endpoint::Chat => Json(ChatCompletion {
                        id: context.id,
                        object: "chat.completion",
                        created: context.created,
                        model: context.model,
                        choices: vec![ChatChoice {
                            index: 0,
                            message: ChatMessageOut {
                                role: "assistant",
                                content: text,
                            },
                            logprobs: wants_logprobs.then(|| chat_logprobs(&logprobs)),
                            finish_reason,
                        }],
                        usage,
                    })
                    .into_response(),
                    Endpoint::Completions => Json(Completion {
                        id: context.id,
                        object: "text_completion",
                        created: context.created,
                        model: context.model,
                        choices: vec![CompletionChoice {
                            index: 0,
                            text,
                            logprobs: wants_logprobs.then(|| completion_logprobs(&logprobs, 0)),
                            finish_reason: Some(finish_reason),
                        }],
                        usage: Some(usage),
                    })
                    .into_response(),
                };
                return Ok(response);
            }
        }
    }
    Err(ApiError::internal("the request ended without an answer"))
}

/// Chat's `logprobs` for `tokens`.
pub fn chat_logprobs(tokens: &[TokenLogprob]) -> ChatLogprobs {
    ChatLogprobs {
        content: tokens
            .iter()
            .map(|t| ChatTokenLogprob {
                token: t.text.clone(),
                logprob: t.logprob,
                bytes: t.text.as_bytes().to_vec(),
                top_logprobs: t
                    .top
                    .iter()
                    .map(|(text, lp)| ChatTopLogprob {
                        token: text.clone(),
                        logprob: *lp,
                        bytes: text.as_bytes().to_vec(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Completions' `logprobs` for `tokens`, whose text starts at byte `offset` of the completion.
pub fn completion_logprobs(tokens: &[TokenLogprob], offset: usize) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    let mut at = offset;
    for t in tokens {
        out.tokens.push(t.text.clone());
        out.token_logprobs.push(t.logprob);
        out.top_logprobs.push(TopLogprobMap(t.top.clone()));
        out.text_offset.push(at);
        at += t.text.len();
    }
    out
}
