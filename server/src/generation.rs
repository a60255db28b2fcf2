//! One request's run through the engine: its events become text deltas (decoded
//! incrementally, stop strings applied), per-token log-probabilities and a final usage.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use concord_runtime::engine::{EngineEvent, EngineRequest, FinishReason, RequestId};
use concord_runtime::text::TokenStreamDecoder;
use concord_runtime::GenerateParams;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::openai::Usage;
use crate::server::AppState;
use concord_runtime::text::StopStringFilter;

/// A validated request, ready for the engine.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// Sampling and budget (stop tokens = the model's EOS ids).
    pub params: GenerateParams,
    /// Alternatives per token when log-probabilities are asked for; `None` = not asked.
    pub logprobs: Option<usize>,
    /// Stop strings.
    pub stops: Vec<String>,
}

/// A generated token's log-probability and its alternatives, with their texts.
#[derive(Debug, Clone)]
pub struct TokenLogprob {
    /// The token's text.
    pub text: String,
    /// Its log-probability.
    pub logprob: f32,
    /// The alternatives' texts and log-probabilities, best first.
    pub top: Vec<(String, f32)>,
}

/// What a generation yields.
#[derive(Debug, Clone)]
pub enum Output {
    /// One generated token's text: possibly empty (a token that ends no character yet, a
    /// token without text, text held back by a stop string), so that a stream carries one
    /// chunk per token and clients can time every token.
    Delta {
        /// The text.
        text: String,
        /// Log-probabilities of the tokens that produced it (when asked for).
        logprobs: Vec<TokenLogprob>,
    },
    /// The end.
    Done {
        /// `stop`, `length` or `abort`.
        finish_reason: &'static str,
        /// Token counts.
        usage: Usage,
    },
}

/// A submitted request. Dropping it drops the event channel, so the engine cancels the
/// request at its next token.
pub struct Generation {
    state: Arc<AppState>,
    id: RequestId,
    events: mpsc::UnboundedReceiver<EngineEvent>,
    decoder: TokenStreamDecoder,
    stops: StopStringFilter,
    logprobs: bool,
    /// The ids that end the request (its end-of-sequence ids unless `ignore_eos`).
    stop_tokens: Vec<u32>,
    prompt_tokens: usize,
    /// Generated tokens seen so far (the EOS token included).
    seen: usize,
    ready: VecDeque<Output>,
    done: bool,
}

impl Generation {
    /// Submits `prepared` to the engine.
    pub fn start(state: &Arc<AppState>, prepared: Prepared) -> Result<Generation, ApiError> {
        let (tx, events) = mpsc::unbounded_channel();
        let metrics = Arc::clone(&state.metrics);
        let mut previous = Instant::now();
        let mut first = true;
        let sink = Box::new(move |event: EngineEvent| {
            match &event {
                EngineEvent::Token { .. } => {
                    let now = Instant::now();
                    metrics.token(first, (now - previous).as_secs_f64());
                    first = false;
                    previous = now;
                }
                EngineEvent::Finished { reason, .. } => metrics.finished(Some(*reason)),
                EngineEvent::Failed(_) => metrics.finished(None),
            }
            // False once the receiver is gone (client disconnected, or a stop string ended
            // the request): the engine cancels it.
            tx.send(event).is_ok()
        });
        let prompt_tokens = prepared.prompt.len();
        let stop_tokens = prepared.params.stop_tokens.clone();
        let request = EngineRequest {
            prompt: prepared.prompt,
            params: prepared.params,
            top_logprobs: prepared.logprobs.unwrap_or(0),
        };
        let id = state.engine.submit(request, sink)?;
        state.metrics.accepted(prompt_tokens);
        state.track(id);
        Ok(Generation {
            state: Arc::clone(state),
            id,
            events,
            decoder: state.tokenizer.decoder_stream_with(true),
            stops: StopStringFilter::new(prepared.stops),
            logprobs: prepared.logprobs.is_some(),
            stop_tokens,
            prompt_tokens,
            seen: 0,
            ready: VecDeque::new(),
            done: false,
        })
    }

    /// Whether log-probabilities were asked for.
    pub fn wants_logprobs(&self) -> bool {
        self.logprobs
    }

    /// The next output; `None` after [`Output::Done`] or an error.
    pub async fn next(&mut self) -> Option<Result<Output, ApiError>> {
        loop {
            if let Some(out) = self.ready.pop_front() {
                return Some(Ok(out));
            }
            if self.done {
                return None;
            }
            let Some(event) = self.events.recv().await else {
                self.done = true;
                return Some(Err(ApiError::internal(
                    "the engine dropped the request without finishing it",
                )));
            };
            match event {
                EngineEvent::Token {
                    id,
                    logprob,
                    top_logprobs,
                } => self.on_token(id, logprob, &top_logprobs),
                EngineEvent::Finished {
                    reason,
                    completion_tokens,
                    ..
                } => self.on_finished(reason, completion_tokens),
                EngineEvent::Failed(message) => {
                    self.done = true;
                    return Some(Err(ApiError::internal(message)));
                }
            }
        }
    }

    fn on_token(&mut self, id: u32, logprob: f32, top: &[(u32, f32)]) {
        self.seen += 1;
        if self.stop_tokens.contains(&id) {
            // The end-of-sequence token: no text; `Finished` follows.
            return;
        }
        let piece = if self.state.eos.contains(&id) {
            // An end-of-sequence id generated under `ignore_eos`: a token without text.
            String::new()
        } else {
            self.decoder.push(id).unwrap_or_default()
        };
        let released = self.stops.push(&piece);
        let logprobs = if self.logprobs {
            vec![TokenLogprob {
                text: self.state.token_text(id),
                logprob,
                top: top
                    .iter()
                    .map(|&(t, lp)| (self.state.token_text(t), lp))
                    .collect(),
            }]
        } else {
            Vec::new()
        };
        self.ready.push_back(Output::Delta {
            text: released.text,
            logprobs,
        });
        if released.stopped {
            // Closing the channel makes the sink return false: the engine stops generating.
            self.events.close();
            self.finish("stop", self.seen);
        }
    }

    fn on_finished(&mut self, reason: FinishReason, completion_tokens: usize) {
        let rest = self.decoder.finish().unwrap_or_default();
        let released = self.stops.push(&rest);
        let mut text = released.text;
        if !released.stopped {
            text.push_str(&self.stops.finish());
        }
        if !text.is_empty() {
            self.ready.push_back(Output::Delta {
                text,
                logprobs: Vec::new(),
            });
        }
        let finish_reason = match reason {
            _ if released.stopped => "stop",
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "abort",
        };
        self.finish(finish_reason, completion_tokens);
    }

    fn finish(&mut self, finish_reason: &'static str, completion_tokens: usize) {
        self.done = true;
        self.ready.push_back(Output::Done {
            finish_reason,
            usage: Usage {
                prompt_tokens: self.prompt_tokens,
                completion_tokens,
                total_tokens: self.prompt_tokens + completion_tokens,
            },
        });
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        self.state.untrack(self.id);
    }
}
