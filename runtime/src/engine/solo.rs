//! A speculative request, run alone through [`Model::generate`]: MTP drafting verifies several
//! tokens of one sequence per pass and is not batched with other sequences.

use super::running::{deliver, finish};
use super::{EngineEvent, FinishReason, Inner, Pending, RequestId};

impl Inner {
    /// Takes `id` out of the cancellation list, saying whether it was there.
    fn take_cancellation(&self, id: RequestId) -> bool {
        let mut shared = self.lock();
        match shared.cancelled.iter().position(|&c| c == id) {
            Some(i) => {
                shared.cancelled.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Generates `p` to its end (or its cancellation) with nothing else running.
    pub(super) fn serve_solo(&self, mut p: Pending) {
        let prompt_tokens = p.request.prompt.len();
        let mut params = p.request.params.clone();
        params.max_new_tokens = params
            .max_new_tokens
            .min(self.model.max_positions() - prompt_tokens);
        if self.take_cancellation(p.id) {
            return finish(&mut p.sink, FinishReason::Cancelled, prompt_tokens, 0);
        }
        let mut generation = match self.model.generate(&p.request.prompt, params.clone()) {
            Ok(g) => g,
            Err(e) => {
                deliver(&mut p.sink, EngineEvent::Failed(e.to_string()));
                return;
            }
        };
        self.lock().stats.prompt_tokens += prompt_tokens as u64;
        let mut produced = 0usize;
        let mut last = None;
        while let Some(token) = generation.next() {
            let id = match token {
                Ok(id) => id,
                Err(e) => {
                    deliver(&mut p.sink, EngineEvent::Failed(e.to_string()));
                    return;
                }
            };
            produced += 1;
            last = Some(id);
            self.lock().stats.generated_tokens += 1;
            let (logprob, top_logprobs) =
                super::logprobs(generation.last_logits(), id, p.request.top_logprobs);
            let event = EngineEvent::Token {
                id,
                logprob,
                top_logprobs,
            };
            if !deliver(&mut p.sink, event) || self.take_cancellation(p.id) {
                let reason = FinishReason::Cancelled;
                return finish(&mut p.sink, reason, prompt_tokens, produced);
            }
        }
        let reason = match last {
            Some(t) if params.stop_tokens.contains(&t) => FinishReason::Stop,
            _ => FinishReason::Length,
        };
        finish(&mut p.sink, reason, prompt_tokens, produced)
    }
}
