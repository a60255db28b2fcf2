//! The forward pass over a batch of sequences of different lengths.

use concord_core::{DType, Error, Result};
use concord_ops::{Add, Embedding, GatherRows, Matmul, RmsNorm, TensorArg};

use super::weights::LayerWeights;
use super::{Model, Sequence};
use crate::exec::DeviceTensor;
use crate::kv_cache::LayerCache;

/// Which rows of logits a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitRows {
    /// Every new token's logits (for `concord logits`).
    All,
    /// Only each sequence's last token (for generation).
    Last,
}

/// Logits per sequence: `rows × vocab` f32 values, row-major.
pub struct BatchLogits {
    /// One entry per sequence, in batch order.
    pub per_sequence: Vec<Vec<f32>>,
    /// Vocabulary size (row width).
    pub vocab: usize,
}

/// Which MLA form a span's tokens use (docs/numerics.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MlaForm {
    /// One new token: absorbed over the latent cache; several: the naive (prefill) form.
    ByLength,
    /// Every token absorbed, row by row: each row's bits equal what single-token decode gives
    /// at its position (speculative verification relies on this to match plain decoding).
    Absorbed,
}

/// Where one sequence's new tokens sit in the batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// First row in the batch.
    pub first: usize,
    /// Rows (new tokens).
    pub count: usize,
    /// Position of the first new token.
    pub start: usize,
    /// The MLA form of its tokens.
    pub form: MlaForm,
}

impl Span {
    /// True when this span's attention reads the latent cache in the absorbed form.
    pub fn absorbed(&self) -> bool {
        self.count == 1 || self.form == MlaForm::Absorbed
    }
}

/// Where one sequence's cache rows are, for a paged cache (`None` fields: rows = positions).
pub(crate) struct SpanRows {
    /// Rows the new tokens' latents go to.
    pub written: Option<DeviceTensor>,
    /// Rows of positions `0..start+count`, in position order (what attention reads).
    pub read: Option<DeviceTensor>,
}

/// A batch laid out for one pass: spans, the positions of every row (uploaded), and where each
/// sequence's cache rows are.
pub(crate) struct BatchPlan {
    pub spans: Vec<Span>,
    pub positions: DeviceTensor,
    pub rows: Vec<SpanRows>,
    /// Set when only each span's last row is wanted out of a layer (see [`LastRows`]).
    pub last_rows: Option<LastRows>,
}

/// Each span's last row, for a pass that needs only those rows' outputs (the MTP drafter:
/// the draft comes from the last pair; the earlier pairs only fill the module's cache). Every
/// row's latent is still written, but only the last rows' queries, attention and feed-forward
/// run. Each row is computed by the same per-row code either way, so the kept rows have the
/// bits a full pass gives them, and the MLA form stays the one the whole span chooses.
pub(crate) struct LastRows {
    /// Batch row of each span's last token, in span order (u32, for `GatherRows`).
    pub rows: DeviceTensor,
    /// Their positions.
    pub positions: DeviceTensor,
}

impl BatchPlan {
    /// Keeps only each span's last row out of every layer from now on.
    pub(crate) fn keep_last_rows(&mut self, model: &Model) -> Result<()> {
        let rows: Vec<u32> = self
            .spans
            .iter()
            .map(|s| (s.first + s.count - 1) as u32)
            .collect();
        let positions: Vec<u32> = self
            .spans
            .iter()
            .map(|s| (s.start + s.count - 1) as u32)
            .collect();
        self.last_rows = Some(LastRows {
            rows: model.exec.upload_u32(&rows)?,
            positions: model.exec.upload_u32(&positions)?,
        });
        Ok(())
    }
}

/// The main model's output before the head: final hidden states (after `model.norm`) of every
/// new token, batch-ordered, with the spans that locate each sequence's rows.
pub(crate) struct Hidden {
    /// [rows, H] in the activation dtype.
    pub h: DeviceTensor,
    pub spans: Vec<Span>,
}

impl Model {
    /// Runs `tokens[i]` as the continuation of `sequences[i]` for every i, as one batch.
    /// Each sequence's results are bit-identical to running it alone.
    pub fn forward(
        &self,
        sequences: &mut [&mut Sequence],
        tokens: &[&[u32]],
        rows: LogitRows,
    ) -> Result<BatchLogits> {
        self.hosted(|| {
            let hidden = self.forward_hidden(sequences, tokens, MlaForm::ByLength)?;
            self.head_logits(&hidden.h, &hidden.spans, rows, &self.weights.lm_head)
        })
    }

    /// Checks the batch, makes room in each sequence's cache for its new tokens and lays out
    /// spans and positions (each sequence continues at its cache's length).
    pub(crate) fn plan_batch(
        &self,
        sequences: &mut [&mut Sequence],
        lengths: &[usize],
        form: MlaForm,
    ) -> Result<BatchPlan> {
        if sequences.len() != lengths.len() || lengths.is_empty() {
            return Err(Error::invalid(
                "forward: one token list per sequence, at least one sequence",
            ));
        }
        let mut positions = Vec::new();
        let mut spans = Vec::with_capacity(lengths.len());
        let mut rows = Vec::with_capacity(lengths.len());
        for (seq, &count) in sequences.iter_mut().zip(lengths) {
            if count == 0 {
                return Err(Error::invalid("forward: a sequence was given no tokens"));
            }
            let start = seq.len();
            let end = start + count;
            if end > self.max_positions {
                return Err(Error::invalid(format!(
                    "sequence of {end} tokens exceeds the supported {} positions",
                    self.max_positions
                )));
            }
            seq.cache.reserve(&self.exec, end)?;
            rows.push(SpanRows {
                written: seq.cache.rows_of(&self.exec, start, count)?,
                read: seq.cache.rows_of(&self.exec, 0, end)?,
            });
            spans.push(Span {
                first: positions.len(),
                count,
                start,
                form,
            });
            positions.extend((start..end).map(|p| p as u32));
        }
        let positions = self.exec.upload_u32(&positions)?;
        Ok(BatchPlan {
            spans,
            positions,
            rows,
            last_rows: None,
        })
    }

    /// Embeds `tokens` and runs every main layer, leaving the final hidden states (after
    /// `model.norm`); each sequence's cache advances by its tokens.
    pub(crate) fn forward_hidden(
        &self,
        sequences: &mut [&mut Sequence],
        tokens: &[&[u32]],
        form: MlaForm,
    ) -> Result<Hidden> {
        for toks in tokens {
            self.check_ids(toks)?;
        }
        let lengths: Vec<usize> = tokens.iter().map(|t| t.len()).collect();
        let plan = self.plan_batch(sequences, &lengths, form)?;
        let act = self.activation();
        let ids: Vec<u32> = tokens.concat();
        let ids_t = self.exec.upload_u32(&ids)?;
        let mut x = self.exec.apply1(
            Embedding { out: act },
            &[ids_t.arg(), self.weights.embed.arg()],
        )?;
        for (l, layer) in self.weights.layers.iter().enumerate() {
            let caches: Vec<_> = sequences.iter().map(|s| s.cache.layer(l)).collect();
            x = self.decoder_layer(x, layer, &plan, &caches)?;
        }
        for ((seq, toks), span) in sequences.iter_mut().zip(tokens).zip(&plan.spans) {
            seq.cache.advance(toks, !span.absorbed());
        }
        let h = self.exec.apply1(
            RmsNorm {
                eps: self.cfg.rms_norm_eps,
                out: act,
            },
            &[x.arg(), self.weights.norm.arg()],
        )?;
        Ok(Hidden {
            h,
            spans: plan.spans,
        })
    }

    /// One pre-norm decoder block: `x + attn(norm(x))`, then `+ ffn(norm(·))`. With
    /// `plan.last_rows` the result holds only each span's last row.
    pub(crate) fn decoder_layer(
        &self,
        x: DeviceTensor,
        layer: &LayerWeights,
        plan: &BatchPlan,
        caches: &[&LayerCache],
    ) -> Result<DeviceTensor> {
        let act = self.activation();
        let eps = self.cfg.rms_norm_eps;
        let a = self.exec.apply1(
            RmsNorm { eps, out: act },
            &[x.arg(), layer.input_norm.arg()],
        )?;
        let attn = self.attention(&a.arg(), plan, &layer.attn, caches)?;
        let x = match &plan.last_rows {
            Some(last) => self.exec.apply1(GatherRows, &[x.arg(), last.rows.arg()])?,
            None => x,
        };
        let x = self.exec.apply1(Add { out: act }, &[x.arg(), attn.arg()])?;
        let b = self
            .exec
            .apply1(RmsNorm { eps, out: act }, &[x.arg(), layer.post_norm.arg()])?;
        let ffn = self.feed_forward(&b.arg(), &layer.ffn)?;
        self.exec.apply1(Add { out: act }, &[x.arg(), ffn.arg()])
    }

    /// `rows` of each span of `h` through `head` [V, H] as f32 logits.
    pub(crate) fn head_logits(
        &self,
        h: &DeviceTensor,
        spans: &[Span],
        rows: LogitRows,
        head: &DeviceTensor,
    ) -> Result<BatchLogits> {
        let mut per_sequence = Vec::with_capacity(spans.len());
        for span in spans {
            let (first, count) = match rows {
                LogitRows::All => (span.first, span.count),
                LogitRows::Last => (span.first + span.count - 1, 1),
            };
            per_sequence.push(self.logits_of(&h.rows(first, count), head)?);
        }
        Ok(BatchLogits {
            per_sequence,
            vocab: self.cfg.vocab_size,
        })
    }

    /// f32 logits of hidden rows `h` through `head`.
    pub(crate) fn logits_of(&self, h: &TensorArg, head: &DeviceTensor) -> Result<Vec<f32>> {
        let logits: DeviceTensor = self
            .exec
            .apply1(Matmul { out: DType::F32 }, &[h.clone(), head.arg()])?;
        self.exec.read_f32(&logits.arg())
    }
}
