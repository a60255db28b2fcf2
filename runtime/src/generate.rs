//! Token generation: greedy or seeded sampling, stop tokens, a token budget; tokens come out
//! of an iterator as they are produced.

use std::collections::VecDeque;

use concord_core::numerics::philox::sampling_uniform;
use concord_core::{Error, Result};
use concord_ops::{Op, Penalize, Sample};

use crate::model::{LogitRows, Model, Sequence};
use crate::speculative::{AcceptanceStats, Emitted, MtpDecoder, SpeculativeMtp};
use crate::token_history::TokenHistory;

/// How to pick tokens and when to stop.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    /// Most tokens to produce.
    pub max_new_tokens: usize,
    /// 0 = greedy (argmax, ties to the lower id); so is any temperature below
    /// [`Sample::GREEDY_BELOW`] (1e-5). Must be finite and ≥ 0.
    pub temperature: f32,
    /// Keep the k most likely ids (0 = all).
    pub top_k: usize,
    /// Nucleus threshold (1.0 = off).
    pub top_p: f32,
    /// Drop ids whose probability is below `min_p` times the most likely one's, before top-k
    /// and top-p (0 = off; in [0, 1]). Greedy decoding ignores it.
    pub min_p: f32,
    /// Subtracted once from the logit of every id the output already holds (0 = off; in
    /// [−2, 2]).
    pub presence_penalty: f32,
    /// Subtracted from an id's logit once per occurrence in the output (0 = off; in [−2, 2]).
    pub frequency_penalty: f32,
    /// For ids in the prompt or the output: positive logits divided by it, others multiplied
    /// (1 = off; > 0). Greedy decoding sees all three penalties (docs/numerics.md §Sampling).
    pub repetition_penalty: f32,
    /// Seed of the Philox stream; the same seed gives the same tokens on every backend.
    pub seed: u64,
    /// Ids that end generation (emitted, then stop).
    pub stop_tokens: Vec<u32>,
    /// Also end at the model's end-of-sequence ids (`eos_token_id` of its config.json), as if
    /// they were in `stop_tokens`. On in [`GenerateParams::default`]; off runs to
    /// `max_new_tokens` unless a `stop_tokens` id comes first.
    pub stop_at_eos: bool,
    /// Draft with the model's MTP module and verify (`None` = plain decoding). Greedy output
    /// is identical either way; sampled output follows the same distribution (not the same
    /// tokens for a seed). The model must be loaded with [`crate::LoadOptions::mtp`].
    pub speculative: Option<SpeculativeMtp>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_new_tokens: 64,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repetition_penalty: 1.0,
            seed: 0,
            stop_tokens: Vec::new(),
            stop_at_eos: true,
            speculative: None,
        }
    }
}

impl GenerateParams {
    /// These parameters with `model`'s end-of-sequence ids added to `stop_tokens` when
    /// `stop_at_eos` asks for them (each id once).
    pub fn with_model_stops(mut self, model: &Model) -> Self {
        if self.stop_at_eos {
            for &eos in &model.config().eos_token_ids {
                if !self.stop_tokens.contains(&eos) {
                    self.stop_tokens.push(eos);
                }
            }
        }
        self
    }

    /// Rejects values no sampler can honour: a NaN, negative or infinite temperature, a
    /// `top_p` outside (0, 1] (NaN included), a `min_p` outside [0, 1], presence or frequency
    /// penalties outside [−2, 2], a repetition penalty that is not finite and > 0, and
    /// penalties together with speculative decoding (the drafter does not track them). Every
    /// `top_k` is valid (0 = all, above the vocabulary = all). Messages name the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::invalid(format!(
                "temperature must be a finite number ≥ 0 (0 = greedy), got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::invalid(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(Error::invalid(format!(
                "min_p must be in [0, 1] (0 = off), got {}",
                self.min_p
            )));
        }
        for (name, value) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            if !(-2.0..=2.0).contains(&value) {
                return Err(Error::invalid(format!(
                    "{name} must be in [-2, 2] (0 = off), got {value}"
                )));
            }
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(Error::invalid(format!(
                "repetition_penalty must be a finite number > 0 (1 = off), got {}",
                self.repetition_penalty
            )));
        }
        if let Some(s) = &self.speculative {
            s.validate()?;
            if self.has_penalties() {
                return Err(Error::invalid(
                    "presence_penalty, frequency_penalty and repetition_penalty are not \
                     supported with speculative decoding (leave them at 0, 0 and 1)",
                ));
            }
        }
        Ok(())
    }

    /// Whether any penalty changes logits.
    pub fn has_penalties(&self) -> bool {
        !self.penalties().is_neutral()
    }

    /// The penalties as the `Penalize` op takes them.
    pub fn penalties(&self) -> Penalize {
        Penalize {
            repetition: self.repetition_penalty,
            frequency: self.frequency_penalty,
            presence: self.presence_penalty,
        }
    }
}

/// Generated tokens, one per `next()`; ends at a stop token or the budget.
pub struct Generation<'m> {
    model: &'m Model,
    sequence: Sequence,
    params: GenerateParams,
    pending: Option<Vec<u32>>,
    produced: usize,
    done: bool,
    last_logits: Vec<f32>,
    /// Speculative decoding state, when asked for.
    drafter: Option<MtpDecoder>,
    /// The last token a speculative round decided (fed to the next round).
    last_token: Option<u32>,
    /// Tokens a speculative round decided that are not handed out yet.
    decided: VecDeque<Emitted>,
    /// The prompt and the output so far, for the penalties.
    history: TokenHistory,
}

impl Model {
    /// Starts generating after `prompt` (which must not be empty).
    pub fn generate(&self, prompt: &[u32], params: GenerateParams) -> Result<Generation<'_>> {
        params.validate()?;
        let params = params.with_model_stops(self);
        if prompt.is_empty() {
            return Err(Error::invalid("the prompt has no tokens"));
        }
        self.check_ids(prompt)?;
        let capacity = prompt.len() + params.max_new_tokens;
        let drafter = match params.speculative {
            Some(config) => Some(MtpDecoder::new(self, config, capacity)?),
            None => None,
        };
        let sequence = self.new_sequence(capacity)?;
        Ok(Generation {
            model: self,
            sequence,
            params,
            pending: Some(prompt.to_vec()),
            produced: 0,
            done: false,
            last_logits: Vec::new(),
            drafter,
            last_token: None,
            decided: VecDeque::new(),
            history: TokenHistory::new(prompt),
        })
    }

    /// Picks the next token from a row of logits under `params` at generation step `step`,
    /// with no token seen (the penalties change nothing; see [`Model::sample_after`]).
    pub fn sample(&self, logits: &[f32], params: &GenerateParams, step: u64) -> Result<u32> {
        self.sample_after(logits, params, step, &TokenHistory::default())
    }

    /// Picks the next token from a row of logits under `params` at generation step `step`,
    /// after the tokens of `history` (what the penalties read): `Penalize` on the device when
    /// a penalty is set and a token was seen, then `Sample`.
    pub fn sample_after(
        &self,
        logits: &[f32],
        params: &GenerateParams,
        step: u64,
        history: &TokenHistory,
    ) -> Result<u32> {
        params.validate()?;
        let exec = &self.exec;
        let vocab = logits.len();
        let mut logits_t = exec.upload_f32(&[1, vocab], logits)?;
        if params.has_penalties() && !history.is_empty() {
            let entries = history.entries();
            let flat: Vec<u32> = entries.iter().flatten().copied().collect();
            let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
            let seen = exec.upload(
                concord_ops::TensorDesc::new(concord_core::DType::U32, [1, entries.len(), 3]),
                &bytes,
            )?;
            logits_t = exec.apply1(params.penalties(), &[logits_t.arg(), seen.arg()])?;
        }
        let uniform = exec.upload_f32(&[1], &[sampling_uniform(params.seed, step, 0)])?;
        let op = Op::Sample(Sample {
            temperature: params.temperature,
            top_k: params.top_k,
            top_p: params.top_p,
            min_p: params.min_p,
            valid_vocab: vocab,
        });
        let ids = exec.apply(op, &[logits_t.arg(), uniform.arg()])?;
        Ok(exec.read_u32(&ids[0].arg())?[0])
    }
}

impl Generation<'_> {
    /// Logits that chose the most recent token.
    pub fn last_logits(&self) -> &[f32] {
        &self.last_logits
    }

    /// Drafting statistics (speculative decoding only).
    pub fn acceptance(&self) -> Option<AcceptanceStats> {
        self.drafter.as_ref().map(MtpDecoder::stats)
    }

    /// Hands out one decided token, ending generation at a stop token or the budget.
    fn emit(&mut self, e: Emitted) -> u32 {
        self.last_logits = e.logits;
        self.produced += 1;
        if self.params.stop_tokens.contains(&e.token) || self.produced >= self.params.max_new_tokens
        {
            self.done = true;
            self.decided.clear();
        }
        e.token
    }

    fn speculative_step(&mut self) -> Result<Option<u32>> {
        if let Some(e) = self.decided.pop_front() {
            return Ok(Some(self.emit(e)));
        }
        let Some(drafter) = self.drafter.as_mut() else {
            return Ok(None);
        };
        // Tokens that may follow this round's first.
        let room = self.params.max_new_tokens - self.produced - 1;
        let index = self.produced as u64;
        let round = match self.pending.take() {
            Some(prompt) => drafter.prefill(
                self.model,
                &mut self.sequence,
                &prompt,
                &self.params,
                index,
                room,
            )?,
            None => {
                let last = self
                    .last_token
                    .ok_or_else(|| Error::invalid("speculative generation lost its last token"))?;
                drafter.round(
                    self.model,
                    &mut self.sequence,
                    last,
                    &self.params,
                    index,
                    room,
                )?
            }
        };
        self.last_token = round.back().map(|e| e.token);
        self.decided = round;
        match self.decided.pop_front() {
            Some(e) => Ok(Some(self.emit(e))),
            None => Ok(None),
        }
    }

    fn step(&mut self) -> Result<Option<u32>> {
        if self.done || self.produced >= self.params.max_new_tokens {
            return Ok(None);
        }
        if self.drafter.is_some() {
            return self.speculative_step();
        }
        let feed = self.pending.take().unwrap_or_default();
        let logits = self
            .model
            .forward(&mut [&mut self.sequence], &[&feed], LogitRows::Last)?;
        self.last_logits = logits.per_sequence.into_iter().next().unwrap_or_default();
        let token = self.model.sample_after(
            &self.last_logits,
            &self.params,
            self.produced as u64,
            &self.history,
        )?;
        self.history.push_output(token);
        self.produced += 1;
        if self.params.stop_tokens.contains(&token) || self.produced >= self.params.max_new_tokens {
            self.done = true;
        } else {
            self.pending = Some(vec![token]);
        }
        Ok(Some(token))
    }
}

impl Iterator for Generation<'_> {
    type Item = Result<u32>;
    fn next(&mut self) -> Option<Self::Item> {
        let model = self.model;
        if self.done || self.produced >= self.params.max_new_tokens {
            // Finished: nothing to run, so nothing to hand to the pool.
            return None;
        }
        // A token the last speculative round already decided needs no launch, so no hand-off
        // to the backend's thread pool either (half the steps at full acceptance).
        let outcome = if self.decided.is_empty() {
            model.hosted(|| self.step())
        } else {
            self.step()
        };
        match outcome {
            Ok(Some(t)) => Some(Ok(t)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(temperature: f32, top_p: f32) -> GenerateParams {
        GenerateParams {
            temperature,
            top_p,
            ..GenerateParams::default()
        }
    }

    #[test]
    fn validate_rejects_unusable_sampling_parameters() {
        for t in [f32::NAN, -1.0, -1e-45, f32::INFINITY, f32::NEG_INFINITY] {
            let err = with(t, 1.0).validate().unwrap_err().to_string();
            assert!(err.contains("temperature"), "{t}: {err}");
        }
        for p in [f32::NAN, 0.0, -0.5, 1.0000001, f32::INFINITY] {
            let err = with(1.0, p).validate().unwrap_err().to_string();
            assert!(err.contains("top_p"), "{p}: {err}");
        }
        for (t, p) in [(0.0, 1.0), (-0.0, 1.0), (1e-45, 0.5), (f32::MAX, 1e-45)] {
            assert!(with(t, p).validate().is_ok(), "{t} {p}");
        }
    }
}
