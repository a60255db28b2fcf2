//! Streaming answers as server-sent events: `data: {chunk}\n\n` per delta in OpenAI's chunk
//! shapes, then `data: [DONE]`.
//!
//! A task drives the generation and feeds the response body through a small channel. When
//! the client disconnects, the body (and the channel's receiver) is dropped, the task's next
//! send fails, the task drops the generation, and the engine cancels the request.

use std::convert::Infallible;

use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::generation::{Generation, Output};
use crate::openai::{
    ChatChunkChoice, ChatCompletionChunk, ChatDelta, Completion, CompletionChoice,
};
use crate::routes::{chat_logprobs, completion_logprobs, AnswerContext, Endpoint};

/// Events buffered between the generation and a slow client.
const BUFFERED_EVENTS: usize = 16;

/// The streaming response of `generation`.
pub fn stream(generation: Generation, context: AnswerContext, endpoint: Endpoint) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(BUFFERED_EVENTS);
    tokio::spawn(drive(generation, context, endpoint, tx));
    Sse::new(ReceiverStream::new(rx)).into_response()
}

fn json_event(value: &impl Serialize) -> Event {
    Event::default().data(serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned()))
}

struct Chunks {
    context: AnswerContext,
    endpoint: Endpoint,
    /// Bytes of completion text sent so far (completions' `text_offset`).
    sent_bytes: usize,
}

impl Chunks {
    fn chat(&self, choices: Vec<ChatChunkChoice>, usage: Option<crate::openai::Usage>) -> Event {
        json_event(&ChatCompletionChunk {
            id: self.context.id.clone(),
            object: "chat.completion.chunk",
            created: self.context.created,
            model: self.context.model.clone(),
            choices,
            usage,
        })
    }

    fn completion(
        &self,
        choices: Vec<CompletionChoice>,
        usage: Option<crate::openai::Usage>,
    ) -> Event {
        json_event(&Completion {
            id: self.context.id.clone(),
            object: "text_completion",
            created: self.context.created,
            model: self.context.model.clone(),
            choices,
            usage,
        })
    }

    /// The chunk of one output; a usage chunk after `Done` when asked for.
    fn events(&mut self, out: Output, wants_logprobs: bool) -> Vec<Event> {
        match (out, self.endpoint) {
            (Output::Delta { text, logprobs }, Endpoint::Chat) => vec![self.chat(
                vec![ChatChunkChoice {
                    index: 0,
                    delta: ChatDelta {
                        role: None,
                        content: Some(text),
                    },
                    logprobs: wants_logprobs.then(|| chat_logprobs(&logprobs)),
                    finish_reason: None,
                }],
                None,
            )],
            (Output::Delta { text, logprobs }, Endpoint::Completions) => {
                let lp = wants_logprobs.then(|| completion_logprobs(&logprobs, self.sent_bytes));
                self.sent_bytes += text.len();
                vec![self.completion(
                    vec![CompletionChoice {
                        index: 0,
                        text,
                        logprobs: lp,
                        finish_reason: None,
                    }],
                    None,
                )]
            }
            (
                Output::Done {
                    finish_reason,
                    usage,
                },
                Endpoint::Chat,
            ) => {
                let mut events = vec![self.chat(
                    vec![ChatChunkChoice {
                        index: 0,
                        delta: ChatDelta::default(),
                        logprobs: None,
                        finish_reason: Some(finish_reason),
                    }],
                    None,
                )];
                if self.context.include_usage {
                    events.push(self.chat(Vec::new(), Some(usage)));
                }
                events
            }
            (
                Output::Done {
                    finish_reason,
                    usage,
                },
                Endpoint::Completions,
            ) => {
                let mut events = vec![self.completion(
                    vec![CompletionChoice {
                        index: 0,
                        text: String::new(),
                        logprobs: None,
                        finish_reason: Some(finish_reason),
                    }],
                    None,
                )];
                if self.context.include_usage {
                    events.push(self.completion(Vec::new(), Some(usage)));
                }
                events
            }
        }
    }
}

async fn drive(
    mut generation: Generation,
    context: AnswerContext,
    endpoint: Endpoint,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut chunks = Chunks {
        context,
        endpoint,
        sent_bytes: 0,
    };
    if endpoint == Endpoint::Chat {
        // OpenAI's first chunk carries the role.
        let first = chunks.chat(
            vec![ChatChunkChoice {
                index: 0,
                delta: ChatDelta {
                    role: Some("assistant"),
                    content: Some(String::new()),
                },
                logprobs: None,
                finish_reason: None,
            }],
            None,
        );
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
    }
    let wants_logprobs = generation.wants_logprobs();
    while let Some(out) = generation.next().await {
        let events = match out {
            Ok(out) => chunks.events(out, wants_logprobs),
            Err(e) => vec![Event::default().data(e.body_json())],
        };
        for event in events {
            if tx.send(Ok(event)).await.is_err() {
                // The client is gone: dropping the generation cancels the request.
                return;
            }
        }
    }
    let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
}
