//! The forward pass over a batch of sequences of different lengths.

use concord_core::{DType, Error, Result};
use concord_ops::{Add, Embedding, Matmul, RmsNorm};

use super::{Model, Sequence};
use crate::exec::DeviceTensor;

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

/// Where one sequence's new tokens sit in the batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// First row in the batch.
    pub first: usize,
    /// Rows (new tokens).
    pub count: usize,
    /// Position of the first new token.
    pub start: usize,
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
        if sequences.len() != tokens.len() || tokens.is_empty() {
            return Err(Error::invalid(
                "forward: one token list per sequence, at least one sequence",
            ));
        }
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut spans = Vec::with_capacity(tokens.len());
        for (seq, toks) in sequences.iter_mut().zip(tokens) {
            if toks.is_empty() {
                return Err(Error::invalid("forward: a sequence was given no tokens"));
            }
            self.check_ids(toks)?;
            let start = seq.len();
            let end = start + toks.len();
            if end > self.max_positions {
                return Err(Error::invalid(format!(
                    "sequence of {end} tokens exceeds the supported {} positions",
                    self.max_positions
                )));
            }
            seq.cache.reserve(&self.exec, end)?;
            spans.push(Span {
                first: ids.len(),
                count: toks.len(),
                start,
            });
            ids.extend_from_slice(toks);
            positions.extend((start..end).map(|p| p as u32));
        }
        let act = self.activation();
        let eps = self.cfg.rms_norm_eps;
        let ids_t = self.exec.upload_u32(&ids)?;
        let pos_t = self.exec.upload_u32(&positions)?;
        let mut x = self.exec.apply1(
            Embedding { out: act },
            &[ids_t.arg(), self.weights.embed.arg()],
        )?;

        for (l, layer) in self.weights.layers.iter().enumerate() {
            let a = self.exec.apply1(
                RmsNorm { eps, out: act },
                &[x.arg(), layer.input_norm.arg()],
            )?;
            let mut caches: Vec<_> = sequences
                .iter_mut()
                .map(|s| &mut s.cache.layers[l])
                .collect();
            let attn = self.attention(&a.arg(), &pos_t, &layer.attn, &spans, &mut caches)?;
            x = self.exec.apply1(Add { out: act }, &[x.arg(), attn.arg()])?;
            let b = self
                .exec
                .apply1(RmsNorm { eps, out: act }, &[x.arg(), layer.post_norm.arg()])?;
            let ffn = self.feed_forward(&b.arg(), &layer.ffn)?;
            x = self.exec.apply1(Add { out: act }, &[x.arg(), ffn.arg()])?;
        }
        for (seq, span) in sequences.iter_mut().zip(&spans) {
            seq.cache.advance(span.count);
        }

        let h = self.exec.apply1(
            RmsNorm { eps, out: act },
            &[x.arg(), self.weights.norm.arg()],
        )?;
        let vocab = self.cfg.vocab_size;
        let mut per_sequence = Vec::with_capacity(spans.len());
        for span in &spans {
            let (first, count) = match rows {
                LogitRows::All => (span.first, span.count),
                LogitRows::Last => (span.first + span.count - 1, 1),
            };
            let logits: DeviceTensor = self.exec.apply1(
                Matmul { out: DType::F32 },
                &[h.rows(first, count), self.weights.lm_head.arg()],
            )?;
            per_sequence.push(self.exec.read_f32(&logits.arg())?);
        }
        Ok(BatchLogits {
            per_sequence,
            vocab,
        })
    }
}
