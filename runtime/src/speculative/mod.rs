//! Speculative decoding with the model's own MTP module as the drafter (spec §7.3–7.4).
//!
//! Each round drafts `n` tokens with the MTP module (the first from the main model's last
//! hidden state, further ones by re-applying the module to its own output, as vLLM does),
//! verifies them in one forward of the main model, and keeps the longest accepted prefix plus
//! one token from the main model (the correction, or a bonus when every draft is kept). The
//! main model's rows of that forward use the absorbed MLA form, so each row has exactly the
//! bits single-token decoding gives: greedy output is token-for-token the plain greedy output.
//! With sampling the acceptance rule keeps the output distribution that of plain sampling.
//! Both latent caches roll back past rejected drafts (`Sequence::truncate`).

mod distribution;

use std::collections::VecDeque;

use concord_core::numerics::philox::sampling_uniform;
use concord_core::{Error, Result};

pub use distribution::{verify_draft, TokenDistribution, Verdict};

use crate::generate::GenerateParams;
use crate::model::{LogitRows, MlaForm, Model, Sequence};

/// Most tokens one round may draft.
pub const MAX_DRAFT_TOKENS: usize = 16;

/// Tokens drafted per round unless asked otherwise: SGLang's default for DeepSeek models
/// (`--speculative-num-steps 3 --speculative-eagle-topk 1`, 4 tokens verified). On the
/// bundled demo it decoded 1.52–1.83× faster than plain greedy decoding at 95.8 % acceptance
/// (docs/benchmarks.md), where one draft gave 1.3–1.4×. Greedy output is the same for every
/// count; only speed changes.
pub const DEFAULT_DRAFT_TOKENS: usize = 3;

/// Philox sub-streams of one output index (`sampling_uniform(seed, index, stream)`): the
/// plain sampler uses stream 0, so a token decided without a draft draws what plain
/// sampling would.
const DRAFT_STREAM: u32 = 1;
const ACCEPT_STREAM: u32 = 2;
const RESIDUAL_STREAM: u32 = 3;

/// Speculative decoding with the MTP module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeculativeMtp {
    /// Tokens drafted per round (1 = the MTP module once; more re-apply it to its output).
    pub draft_tokens: usize,
}

impl Default for SpeculativeMtp {
    fn default() -> Self {
        SpeculativeMtp {
            draft_tokens: DEFAULT_DRAFT_TOKENS,
        }
    }
}

impl SpeculativeMtp {
    /// Rejects a draft count of 0 or above [`MAX_DRAFT_TOKENS`].
    pub fn validate(&self) -> Result<()> {
        if self.draft_tokens == 0 || self.draft_tokens > MAX_DRAFT_TOKENS {
            return Err(Error::invalid(format!(
                "draft tokens must be 1..={MAX_DRAFT_TOKENS}, got {}",
                self.draft_tokens
            )));
        }
        Ok(())
    }
}

/// How well the drafts did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptanceStats {
    /// Verification forwards of the main model.
    pub steps: u64,
    /// Tokens drafted and sent to verification (a rejection also discards the drafts after it:
    /// they count as drafted, not accepted).
    pub drafted: u64,
    /// Drafted tokens kept.
    pub accepted: u64,
}

impl AcceptanceStats {
    /// accepted / drafted (0 before any draft).
    pub fn acceptance_rate(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }

    /// Tokens produced per verification forward: accepted drafts plus the main model's own
    /// token, averaged over steps (1 = no gain; 1 + draft tokens = every draft kept).
    pub fn mean_accepted_length(&self) -> f64 {
        if self.steps == 0 {
            0.0
        } else {
            (self.accepted + self.steps) as f64 / self.steps as f64
        }
    }
}

/// A drafted token and the distribution it was drawn from.
struct Draft {
    token: u32,
    drafter: TokenDistribution,
}

/// One token to hand out, with the logits that chose it.
pub(crate) struct Emitted {
    pub token: u32,
    pub logits: Vec<f32>,
}

/// The speculative state of one generation.
pub(crate) struct MtpDecoder {
    mtp: Sequence,
    /// MTP cache rows holding final pairs; rows past it are draft-chain scratch.
    mtp_committed: usize,
    drafts: Vec<Draft>,
    config: SpeculativeMtp,
    stats: AcceptanceStats,
}

/// What a round decided: tokens in order; generation continues from the last one.
pub(crate) type Round = VecDeque<Emitted>;

impl MtpDecoder {
    pub fn new(model: &Model, config: SpeculativeMtp, capacity: usize) -> Result<Self> {
        config.validate()?;
        Ok(MtpDecoder {
            mtp: model.new_mtp_sequence(capacity)?,
            mtp_committed: 0,
            drafts: Vec::new(),
            config,
            stats: AcceptanceStats::default(),
        })
    }

    pub fn stats(&self) -> AcceptanceStats {
        self.stats
    }

    /// Prefill: the main model over the prompt, its token at `index` sampled exactly as plain
    /// generation samples it, then the MTP module over the prompt's pairs and the first drafts.
    pub fn prefill(
        &mut self,
        model: &Model,
        main: &mut Sequence,
        prompt: &[u32],
        params: &GenerateParams,
        index: u64,
        room: usize,
    ) -> Result<Round> {
        let hidden = model.forward_hidden(&mut [&mut *main], &[prompt], MlaForm::ByLength)?;
        let logits = model
            .head_logits(
                &hidden.h,
                &hidden.spans,
                LogitRows::Last,
                &model.weights.lm_head,
            )?
            .per_sequence
            .swap_remove(0);
        let token = model.sample(&logits, params, index)?;
        let mut pairs = prompt[1..].to_vec();
        pairs.push(token);
        // The prompt's pairs in the prefill form; later rounds' few pairs absorbed (below).
        self.commit_and_draft(
            model,
            &hidden.h.arg(),
            &pairs,
            params,
            index + 1,
            room,
            MlaForm::ByLength,
        )?;
        Ok(VecDeque::from([Emitted { token, logits }]))
    }

    /// One round: the main model on `last` and the drafts, the accepted prefix and one token
    /// of its own; `index` is the output index of the first token decided, `room` how many
    /// tokens may still be produced after this round's first.
    pub fn round(
        &mut self,
        model: &Model,
        main: &mut Sequence,
        last: u32,
        params: &GenerateParams,
        index: u64,
        room: usize,
    ) -> Result<Round> {
        let m = main.len();
        // Never draft past the budget or the position limit.
        let usable = self
            .drafts
            .len()
            .min(room)
            .min(model.max_positions().saturating_sub(m + 1));
        let mut feed = vec![last];
        feed.extend(self.drafts[..usable].iter().map(|d| d.token));
        let hidden = model.forward_hidden(&mut [&mut *main], &[&feed], MlaForm::Absorbed)?;
        let all = model
            .head_logits(
                &hidden.h,
                &hidden.spans,
                LogitRows::All,
                &model.weights.lm_head,
            )?
            .per_sequence
            .swap_remove(0);
        let vocab = model.config().vocab_size;
        let row = |j: usize| all[j * vocab..(j + 1) * vocab].to_vec();
        let seed = params.seed;
        let mut round = VecDeque::new();
        let mut kept = 0;
        self.stats.steps += 1;
        self.stats.drafted += usable as u64;
        for (j, draft) in self.drafts[..usable].iter().enumerate() {
            let at = index + j as u64;
            let logits = row(j);
            let target = TokenDistribution::new(&logits, params);
            let verdict = verify_draft(
                &target,
                &draft.drafter,
                draft.token,
                sampling_uniform(seed, at, ACCEPT_STREAM),
                sampling_uniform(seed, at, RESIDUAL_STREAM),
            );
            round.push_back(Emitted {
                token: verdict.token,
                logits,
            });
            if !verdict.accepted {
                break;
            }
            self.stats.accepted += 1;
            kept += 1;
        }
        if kept == usable {
            // Every draft kept: the main model's next token comes free from the last row.
            let logits = row(usable);
            let target = TokenDistribution::new(&logits, params);
            let at = index + usable as u64;
            let token = target.sample(sampling_uniform(seed, at, 0));
            round.push_back(Emitted { token, logits });
        }
        // Positions m..=m+kept hold `last` and the kept drafts; later rows are stale.
        main.truncate(m + 1 + kept);
        let pairs: Vec<u32> = round.iter().map(|e| e.token).collect();
        let decided = pairs.len() as u64;
        self.commit_and_draft(
            model,
            &hidden.h.rows(0, pairs.len()),
            &pairs,
            params,
            index + decided,
            room.saturating_sub(pairs.len()),
            // A round's pairs read the whole MTP cache: absorbed, like decode, reads the latent
            // rows once instead of expanding every one through kv_b_proj.
            MlaForm::Absorbed,
        )?;
        Ok(round)
    }

    /// Feeds the final pairs `(h[r], pairs[r])` to the MTP module at the committed positions,
    /// then drafts up to the configured count for output indices from `index` (fewer when
    /// `room` is smaller; none when it is 0).
    #[allow(clippy::too_many_arguments)]
    fn commit_and_draft(
        &mut self,
        model: &Model,
        h: &concord_ops::TensorArg,
        pairs: &[u32],
        params: &GenerateParams,
        index: u64,
        room: usize,
        form: MlaForm,
    ) -> Result<()> {
        self.drafts.clear();
        self.mtp.truncate(self.mtp_committed);
        // Only the last pair's output drafts; the others only fill the MTP cache.
        let mut out = model.mtp_hidden(&mut [&mut self.mtp], h, &[pairs], form, LogitRows::Last)?;
        self.mtp_committed = self.mtp.len();
        let wanted = self.config.draft_tokens.min(room);
        for k in 0..wanted {
            let logits = model
                .mtp_head_logits(&out, LogitRows::Last)?
                .per_sequence
                .swap_remove(0);
            let drafter = TokenDistribution::new(&logits, params);
            let token = drafter.sample(sampling_uniform(
                params.seed,
                index + k as u64,
                DRAFT_STREAM,
            ));
            self.drafts.push(Draft { token, drafter });
            if k + 1 == wanted || self.mtp.len() + 1 > model.max_positions() {
                break;
            }
            // The next draft: the module again, on its own output and the token it drafted.
            let rows = out.y.desc.shape[0];
            let y_last = out.y.rows(rows - 1, 1);
            out = model.mtp_hidden(
                &mut [&mut self.mtp],
                &y_last,
                &[&[token]],
                MlaForm::ByLength,
                LogitRows::Last,
            )?;
        }
        Ok(())
    }
}
