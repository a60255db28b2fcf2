//! One request in the running batch: its sequence (latent cache), how much of its prompt is
//! fed, and what it has generated.

use std::sync::Arc;

use super::{EngineEvent, EngineRequest, EventSink, FinishReason, Pending, RequestId};
use crate::kv_pool::KvPool;
use crate::model::{Model, Sequence};
use crate::token_history::TokenHistory;

/// A request admitted to the batch.
pub(super) struct Running {
    pub id: RequestId,
    pub request: EngineRequest,
    pub sink: EventSink,
    sequence: Sequence,
    /// Prompt tokens fed so far.
    fed: usize,
    /// Tokens generated so far (the next token's sampling step).
    produced: usize,
    /// The last generated token, fed at the next step.
    last: Option<u32>,
    /// Every token sent to the client (replayed after a preemption).
    generated: Vec<u32>,
    /// Tokens sent before a preemption, fed again one at a time after the prompt.
    replay: Vec<u32>,
    /// How many of `replay` are fed.
    replayed: usize,
}

/// What one step feeds a running request.
pub(super) struct Feed<'r> {
    /// The tokens.
    pub tokens: &'r [u32],
    /// True when this step's logits choose a token (the last prompt chunk, or decoding).
    pub samples: bool,
}

impl Running {
    /// Admits a pending request: clamps its budget to the model's context (as the
    /// single-request engine did) and gives it a cache: blocks of `pool` (taking over the
    /// blocks of a prompt prefix another request computed) or one of its own for the whole
    /// prompt and budget. A preempted request comes back with the tokens it already sent,
    /// which are replayed before sampling resumes. Returns the request and the prompt tokens
    /// the shared prefix covered.
    pub fn admit(
        model: &Model,
        pool: Option<&Arc<KvPool>>,
        pending: Pending,
    ) -> std::result::Result<(Running, usize), (EventSink, String)> {
        let Pending {
            id,
            mut request,
            sink,
            replay,
        } = pending;
        let room = model.max_positions() - request.prompt.len();
        request.params.max_new_tokens = request.params.max_new_tokens.min(room);
        if let Err(e) = model.check_ids(&request.prompt) {
            return Err((sink, e.to_string()));
        }
        let capacity = request.prompt.len() + request.params.max_new_tokens;
        let sequence = match pool {
            Some(pool) => model.new_paged_sequence(pool),
            None => model.new_sequence(capacity),
        };
        let mut sequence = match sequence {
            Ok(s) => s,
            Err(e) => return Err((sink, e.to_string())),
        };
        let reused = sequence.reuse_prefix(&request.prompt);
        Ok((
            Running {
                id,
                request,
                sink,
                sequence,
                fed: reused,
                produced: replay.len(),
                last: None,
                generated: replay.clone(),
                replay,
                replayed: 0,
            },
            reused,
        ))
    }

    /// Gives the request back to the queue, dropping its cache (its blocks return to the
    /// pool); what it already sent is kept for the replay.
    pub fn preempt(self) -> Pending {
        Pending {
            id: self.id,
            request: self.request,
            sink: self.sink,
            replay: self.generated,
        }
    }

    /// The prompt and the tokens generated so far, for the penalties (empty when the request
    /// sets none, so nothing is uploaded).
    pub fn history(&self) -> TokenHistory {
        if self.request.params.has_penalties() {
            TokenHistory::with_output(&self.request.prompt, &self.generated)
        } else {
            TokenHistory::default()
        }
    }

    /// Pool blocks this request needs before its next step can run.
    pub fn blocks_missing(&self, chunk: usize) -> usize {
        let next = self.feed(chunk).tokens.len();
        self.sequence.blocks_missing(self.sequence.len() + next)
    }

    /// True while tokens sent before a preemption are being fed again.
    pub fn replaying(&self) -> bool {
        !self.prefilling() && self.replayed < self.replay.len()
    }

    /// Records that one replayed token was fed.
    pub fn fed_replay(&mut self) {
        self.replayed += 1;
    }

    /// True while prompt tokens remain to be fed.
    pub fn prefilling(&self) -> bool {
        self.fed < self.request.prompt.len()
    }

    /// True once the budget is spent (a budget of 0 ends before the first step, as
    /// [`Model::generate`] does).
    pub fn budget_spent(&self) -> bool {
        self.produced >= self.request.params.max_new_tokens
    }

    /// The tokens this step feeds: the next prompt chunk of at most `chunk` tokens, or the
    /// last generated token.
    ///
    /// A chunk never leaves a single prompt token for later, and a chunk after the first is
    /// never one token long: a one-token span runs the weight-absorbed MLA form, whose bits
    /// differ from the naive prefill form that one whole prefill uses (docs/numerics.md §2).
    /// So a chunk may hold one token more than `chunk` (two when `chunk` is 1).
    pub fn feed(&self, chunk: usize) -> Feed<'_> {
        let prompt = &self.request.prompt;
        if self.replaying() {
            // One token at a time, as it was generated: the same forms, the same bits.
            return Feed {
                tokens: &self.replay[self.replayed..self.replayed + 1],
                samples: self.replayed + 1 == self.replay.len(),
            };
        }
        if !self.prefilling() {
            let last = self.last.as_slice();
            return Feed {
                tokens: last,
                samples: true,
            };
        }
        let left = prompt.len() - self.fed;
        let take = prompt_chunk(left, chunk);
        Feed {
            tokens: &prompt[self.fed..self.fed + take],
            samples: take == left && self.replay.is_empty(),
        }
    }

    /// The sequence, for the batch's forward pass.
    pub fn sequence(&mut self) -> &mut Sequence {
        &mut self.sequence
    }

    /// Records that `count` prompt tokens were fed (they are in the cache now).
    pub fn fed_prompt(&mut self, count: usize) {
        self.fed += count;
    }

    /// The sampling step of the next token: this request's own token index.
    pub fn step_index(&self) -> u64 {
        self.produced as u64
    }

    /// Records `token`, sends it to the sink and says whether the request goes on
    /// (`None`) or why it ends.
    pub fn emit(&mut self, token: u32, logits: &[f32]) -> Option<FinishReason> {
        self.produced += 1;
        self.last = Some(token);
        self.generated.push(token);
        let (logprob, top_logprobs) = super::logprobs(logits, token, self.request.top_logprobs);
        let keep = deliver(
            &mut self.sink,
            EngineEvent::Token {
                id: token,
                logprob,
                top_logprobs,
            },
        );
        if !keep {
            Some(FinishReason::Cancelled)
        } else if self.request.params.stop_tokens.contains(&token) {
            Some(FinishReason::Stop)
        } else if self.budget_spent() {
            Some(FinishReason::Length)
        } else {
            None
        }
    }

    /// Sends the final event; the request (and its cache) is dropped after this.
    pub fn finish(mut self, reason: FinishReason) {
        let prompt_tokens = self.request.prompt.len();
        let completion_tokens = self.produced;
        finish(&mut self.sink, reason, prompt_tokens, completion_tokens);
    }

    /// Sends `Failed`; the request (and its cache) is dropped after this.
    pub fn fail(mut self, message: String) {
        deliver(&mut self.sink, EngineEvent::Failed(message));
    }
}

/// Calls `sink` with `event`; a sink that panics counts as one that returned `false`, so a
/// client's bug never takes the engine thread down.
pub(super) fn deliver(sink: &mut EventSink, event: EngineEvent) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(event))).unwrap_or(false)
}

/// Sends `Finished`.
pub(super) fn finish(
    sink: &mut EventSink,
    reason: FinishReason,
    prompt_tokens: usize,
    completion_tokens: usize,
) {
    deliver(
        sink,
        EngineEvent::Finished {
            reason,
            prompt_tokens,
            completion_tokens,
        },
    );
}

/// How many of `left` prompt tokens to feed with a chunk limit of `chunk` (see
/// [`Running::feed`]): never leaves exactly one token behind, never takes one token alone
/// unless it is the whole of what is left.
fn prompt_chunk(left: usize, chunk: usize) -> usize {
    let mut take = chunk.max(2).min(left);
    if left - take == 1 {
        take += 1;
    }
    take
}

#[cfg(test)]
mod tests {
    use super::prompt_chunk;

    #[test]
    fn chunks_never_leave_or_take_a_lone_token() {
        // (left, chunk) → take, worked by hand from the rule.
        for (left, chunk, want) in [
            (1, 16, 1),
            (2, 16, 2),
            (16, 16, 16),
            (17, 16, 17),
            (18, 16, 16),
            (40, 16, 16),
            (3, 1, 3),
            (4, 1, 2),
            (5, 2, 2),
            (3, 2, 3),
        ] {
            assert_eq!(prompt_chunk(left, chunk), want, "left {left} chunk {chunk}");
        }
    }
}
