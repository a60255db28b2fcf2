//! `--logprobs N` of `generate --emit json` and `chat`: each generated token's log-probability
//! (log-softmax of the logits it was chosen from, before penalties and temperature, as OpenAI
//! reports it) and the N most likely ids at that step, collected while generating and written
//! as one JSON list.

use concord_runtime::engine::logprobs;
use concord_runtime::text::Tokenizer;
use serde_json::{json, Value};

/// One generated token: its id, its log-probability and the most likely alternatives (id,
/// log-probability), best first.
type Entry = (u32, f32, Vec<(u32, f32)>);

/// The log-probabilities of the tokens generated so far.
#[derive(Debug, Default)]
pub struct TokenLogprobs {
    entries: Vec<Entry>,
}

impl TokenLogprobs {
    /// Records `id`, chosen from `logits`, with the `top` most likely alternatives.
    pub fn push(&mut self, logits: &[f32], id: u32, top: usize) {
        let (logprob, alternatives) = logprobs(logits, id, top);
        self.entries.push((id, logprob, alternatives));
    }

    /// The recorded ids, in order.
    pub fn ids(&self) -> Vec<u32> {
        self.entries.iter().map(|e| e.0).collect()
    }

    /// `[{"id", "token", "logprob", "top_logprobs": [{"id", "token", "logprob"}]}]`; `token`
    /// is the id's text (null without a tokenizer).
    pub fn to_json(&self, tokenizer: Option<&Tokenizer>) -> Value {
        let piece = |id: u32| tokenizer.map(|t| t.decode(&[id], false));
        self.entries
            .iter()
            .map(|(id, logprob, top)| {
                json!({
                    "id": id,
                    "token": piece(*id),
                    "logprob": logprob,
                    "top_logprobs": top
                        .iter()
                        .map(|&(t, lp)| json!({"id": t, "token": piece(t), "logprob": lp}))
                        .collect::<Vec<_>>(),
                })
            })
            .collect()
    }
}
