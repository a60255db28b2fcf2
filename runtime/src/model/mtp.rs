//! The Multi-Token Prediction module (spec §7): its weights and its forward pass, as graph ops.
//!
//! For a main-model position i with final hidden state `h_i` (after `model.norm`) and the next
//! token `t_{i+1}`: `x_i = eh_proj([enorm(Emb(t_{i+1})) ; hnorm(h_i)])` — embedding first, as
//! vLLM, SGLang and transformers-based ports do — then the module's own decoder layer over its
//! own latent cache at RoPE position i, and `shared_head.head(shared_head.norm(y_i))` predicts
//! `t_{i+2}`. No position-0 masking (SGLang semantics; docs/numerics.md §7).

use concord_core::{Error, Result};
use concord_loader::{Checkpoint, ModelConfig};
use concord_ops::{Embedding, Op, RmsNorm, ScatterRows, TensorArg, TensorDesc};

use super::forward::{BatchLogits, LogitRows, MlaForm, Span};
use super::weights::{LayerWeights, Linear, WeightLoader};
use super::{Model, Sequence};
use crate::exec::DeviceTensor;

/// The weights of one MTP module (`model.layers.{num_hidden_layers}.*`).
pub struct MtpWeights {
    /// Its layer index in the checkpoint (`num_hidden_layers`).
    pub layer_index: usize,
    /// enorm (RMSNorm of the token embedding).
    pub enorm: DeviceTensor,
    /// hnorm (RMSNorm of the main model's hidden state).
    pub hnorm: DeviceTensor,
    /// eh_proj [H, 2H], unquantized as the release stores it (BF16) in every precision.
    pub eh_proj: Linear,
    /// The module's decoder layer (attention + MoE/MLP).
    pub layer: LayerWeights,
    /// shared_head.norm.
    pub head_norm: DeviceTensor,
    /// The module's own `embed_tokens` when its copy differs from the main embedding; `None`
    /// when the copy is bitwise identical (the release's case): the main one is used, one copy
    /// in memory.
    pub embed: Option<DeviceTensor>,
    /// Likewise `shared_head.head` against `lm_head`.
    pub head: Option<DeviceTensor>,
}

/// Whether the checkpoint tensor `copy` holds exactly the bytes, dtype and shape of `main`.
pub fn is_identical_copy(ckpt: &Checkpoint, copy: &str, main: &str) -> bool {
    match (ckpt.get(copy), ckpt.get(main)) {
        (Some(c), Some(m)) => c.dtype == m.dtype && c.shape == m.shape && c.data == m.data,
        _ => false,
    }
}

/// The tensor the main model uses as its output head (`lm_head`, or the embedding when tied).
pub fn main_head_name(cfg: &ModelConfig, ckpt: &Checkpoint) -> &'static str {
    if cfg.tie_word_embeddings && ckpt.get("lm_head.weight").is_none() {
        "model.embed_tokens.weight"
    } else {
        "lm_head.weight"
    }
}

impl WeightLoader<'_> {
    /// Loads the first MTP module (`model.layers.{num_hidden_layers}`); later modules, if the
    /// config declares them, are checked by the inventory but not loaded (drafts re-apply the
    /// first module, as vLLM does with one module).
    pub fn mtp(&self) -> Result<MtpWeights> {
        let l = self.cfg.num_hidden_layers;
        let p = format!("model.layers.{l}");
        let own_copy = |copy: String, main: &str| -> Result<Option<DeviceTensor>> {
            if is_identical_copy(self.ckpt, &copy, main) {
                Ok(None)
            } else {
                tracing::info!(tensor = %copy, main, "MTP copy differs from the main tensor; loading it");
                Ok(Some(self.dense(&copy)?))
            }
        };
        Ok(MtpWeights {
            layer_index: l,
            enorm: self.dense(&format!("{p}.enorm.weight"))?,
            hnorm: self.dense(&format!("{p}.hnorm.weight"))?,
            eh_proj: Linear::Dense(self.dense(&format!("{p}.eh_proj.weight"))?),
            layer: self.layer(l)?,
            head_norm: self.dense(&format!("{p}.shared_head.norm.weight"))?,
            embed: own_copy(
                format!("{p}.embed_tokens.weight"),
                "model.embed_tokens.weight",
            )?,
            head: own_copy(
                format!("{p}.shared_head.head.weight"),
                main_head_name(self.cfg, self.ckpt),
            )?,
        })
    }
}

impl MtpWeights {
    /// Backend memory of the module (its copies only when they are held separately).
    pub fn bytes(&self) -> usize {
        self.enorm.buffer.len()
            + self.hnorm.buffer.len()
            + self.eh_proj.bytes()
            + self.layer.bytes()
            + self.head_norm.buffer.len()
            + self.embed.as_ref().map_or(0, |t| t.buffer.len())
            + self.head.as_ref().map_or(0, |t| t.buffer.len())
    }
}

/// The MTP layer's output before `shared_head.norm` for every new row (or only each span's
/// last, `LogitRows::Last` in `mtp_hidden`), batch-ordered — the
/// `h` of a further draft step — and the spans locating each sequence's rows.
pub(crate) struct MtpHidden {
    /// [rows, H] in the activation dtype.
    pub y: DeviceTensor,
    pub spans: Vec<Span>,
}

impl Model {
    /// True when the model was loaded with its MTP module.
    pub fn has_mtp(&self) -> bool {
        self.mtp.is_some()
    }

    pub(crate) fn mtp_weights(&self) -> Result<&MtpWeights> {
        self.mtp.as_ref().ok_or_else(|| {
            Error::invalid(if self.cfg.num_nextn_predict_layers == 0 {
                "this model has no MTP module (num_nextn_predict_layers = 0 in config.json)"
                    .to_string()
            } else {
                "the model was loaded without its MTP module (load it with LoadOptions::mtp)"
                    .to_string()
            })
        })
    }

    /// A fresh, empty latent cache for the MTP module (one layer).
    pub fn new_mtp_sequence(&self, capacity_hint: usize) -> Result<Sequence> {
        self.mtp_weights()?;
        self.sequence_with_layers(1, capacity_hint)
    }

    /// Runs the MTP module on pairs `(h[r], tokens[r])` (row r of `h`, the r-th of the
    /// concatenated `tokens`) as the continuation of each MTP sequence; every MTP cache
    /// advances by its tokens. `outputs`: every pair's output, or (`Last`) only each
    /// sequence's last one — the drafter's case, where the earlier pairs only fill the cache
    /// and skip the queries, attention and feed-forward (the kept rows' bits do not change).
    pub(crate) fn mtp_hidden(
        &self,
        mtp_sequences: &mut [&mut Sequence],
        h: &TensorArg,
        tokens: &[&[u32]],
        form: MlaForm,
        outputs: LogitRows,
    ) -> Result<MtpHidden> {
        let w = self.mtp_weights()?;
        for toks in tokens {
            self.check_ids(toks)?;
        }
        let ids: Vec<u32> = tokens.concat();
        let rows = ids.len();
        let hidden = self.cfg.hidden_size;
        if h.desc.shape != [rows, hidden] {
            return Err(Error::invalid(format!(
                "MTP: hidden states {:?} do not match {rows} tokens of width {hidden}",
                h.desc.shape
            )));
        }
        let lengths: Vec<usize> = tokens.iter().map(|t| t.len()).collect();
        let mut plan = self.plan_batch(mtp_sequences, &lengths, form)?;
        // A pass whose spans are single rows (a further draft step) keeps every row anyway:
        // no gathers, no uploads of row lists.
        if outputs == LogitRows::Last && plan.spans.iter().any(|s| s.count > 1) {
            plan.keep_last_rows(self)?;
        }
        let act = self.activation();
        let eps = self.cfg.rms_norm_eps;
        let ids_t = self.exec.upload_u32(&ids)?;
        let embed = w.embed.as_ref().unwrap_or(&self.weights.embed);
        let e = self
            .exec
            .apply1(Embedding { out: act }, &[ids_t.arg(), embed.arg()])?;
        let e = self
            .exec
            .apply1(RmsNorm { eps, out: act }, &[e.arg(), w.enorm.arg()])?;
        let g = self
            .exec
            .apply1(RmsNorm { eps, out: act }, &[h.clone(), w.hnorm.arg()])?;
        // [e ; g] per row: the [rows, 2H] result viewed as [2·rows, H] takes e's rows at even
        // and g's at odd row slots — a pure copy, so every backend gives the same bytes.
        let cat = self.exec.zeros(TensorDesc::new(act, [rows, 2 * hidden]))?;
        let halves = cat.arg().reshaped([2 * rows, hidden]);
        for (part, parity) in [(&e, 0u32), (&g, 1u32)] {
            let slots: Vec<u32> = (0..rows as u32).map(|r| 2 * r + parity).collect();
            let slots = self.exec.upload_u32(&slots)?;
            self.exec.launch(
                &Op::ScatterRows(ScatterRows),
                &[part.arg(), slots.arg()],
                std::slice::from_ref(&halves),
            )?;
        }
        let x = self.linear(&cat.arg(), &w.eh_proj)?;
        let caches: Vec<_> = mtp_sequences.iter().map(|s| s.cache.layer(0)).collect();
        let y = self.decoder_layer(x, &w.layer, &plan, &caches)?;
        for ((seq, toks), span) in mtp_sequences.iter_mut().zip(tokens).zip(&plan.spans) {
            seq.cache.advance(toks, !span.absorbed());
        }
        let mut spans = plan.spans;
        if plan.last_rows.is_some() {
            // y holds one row per span, in span order.
            for (i, span) in spans.iter_mut().enumerate() {
                span.first = i;
                span.count = 1;
            }
        }
        Ok(MtpHidden { y, spans })
    }

    /// The MTP module's logits for `rows` of each span of its output `y`.
    pub(crate) fn mtp_head_logits(&self, out: &MtpHidden, rows: LogitRows) -> Result<BatchLogits> {
        let w = self.mtp_weights()?;
        let normed = self.exec.apply1(
            RmsNorm {
                eps: self.cfg.rms_norm_eps,
                out: self.activation(),
            },
            &[out.y.arg(), w.head_norm.arg()],
        )?;
        let head = w.head.as_ref().unwrap_or(&self.weights.lm_head);
        self.head_logits(&normed, &out.spans, rows, head)
    }

    /// Main-model logits and MTP logits of every token of `tokens[i]`, continuing
    /// `sequences[i]` and `mtp_sequences[i]` (which must hold the same number of tokens).
    /// MTP row r predicts token r+2 from the main model's hidden state at r and token r+1;
    /// for the last row, token r+1 is the main model's greedy choice (ties → lower id).
    /// Returns `(logits, mtp_logits)`, each with every row.
    pub fn forward_with_mtp(
        &self,
        sequences: &mut [&mut Sequence],
        mtp_sequences: &mut [&mut Sequence],
        tokens: &[&[u32]],
    ) -> Result<(BatchLogits, BatchLogits)> {
        self.hosted(|| self.forward_with_mtp_here(sequences, mtp_sequences, tokens))
    }

    fn forward_with_mtp_here(
        &self,
        sequences: &mut [&mut Sequence],
        mtp_sequences: &mut [&mut Sequence],
        tokens: &[&[u32]],
    ) -> Result<(BatchLogits, BatchLogits)> {
        self.mtp_weights()?;
        if mtp_sequences.len() != sequences.len()
            || sequences
                .iter()
                .zip(mtp_sequences.iter())
                .any(|(s, m)| s.len() != m.len())
        {
            return Err(Error::invalid(
                "forward_with_mtp: one MTP sequence per sequence, each as long as its main one",
            ));
        }
        let hidden = self.forward_hidden(sequences, tokens, MlaForm::ByLength)?;
        let logits = self.head_logits(
            &hidden.h,
            &hidden.spans,
            LogitRows::All,
            &self.weights.lm_head,
        )?;
        let vocab = logits.vocab;
        let next: Vec<Vec<u32>> = tokens
            .iter()
            .zip(&logits.per_sequence)
            .map(|(toks, rows)| {
                let last = &rows[rows.len() - vocab..];
                let mut shifted = toks[1..].to_vec();
                shifted.push(greedy_token(last));
                shifted
            })
            .collect();
        let next_refs: Vec<&[u32]> = next.iter().map(Vec::as_slice).collect();
        let out = self.mtp_hidden(
            mtp_sequences,
            &hidden.h.arg(),
            &next_refs,
            MlaForm::ByLength,
            LogitRows::All,
        )?;
        let mtp_logits = self.mtp_head_logits(&out, LogitRows::All)?;
        Ok((logits, mtp_logits))
    }
}

/// argmax with ties to the lower id and NaN never winning (all NaN → 0): the Sample op's
/// greedy rule (docs/numerics.md, Sampling).
pub fn greedy_token(logits: &[f32]) -> u32 {
    let mut best: Option<usize> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() {
            continue;
        }
        // A later id wins only when strictly greater (NaN never wins; a NaN best is replaced).
        if best.is_none_or(|b| logits[b].is_nan() || logits[b] < l) {
            best = Some(i);
        }
    }
    best.unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{open_backend, LoadOptions, Precision};

    fn demo(precision: Precision) -> Model {
        let options = LoadOptions {
            precision: Some(precision),
            mtp: true,
            ..LoadOptions::default()
        };
        let backend = open_backend("cpu").unwrap();
        Model::load(&crate::demo_model_dir(), backend, &options, &mut |_, _| {
            true
        })
        .unwrap()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The drafter's pass keeps only each sequence's last MTP row: its logits must be the
    /// bits of that row in the full pass. Oracle: `forward_with_mtp` (every row, the path
    /// checked against transformers in tests/tests/mtp.rs) for the prompt's naive form, and
    /// the all-rows pass for the absorbed form; two sequences of different lengths at once.
    #[test]
    fn keeping_only_the_last_mtp_rows_keeps_their_bits() {
        let prompts: [&[u32]; 2] = [&[0, 40, 41, 42, 43, 44, 45], &[0, 77, 78]];
        let next: [&[u32]; 2] = [&[50, 51], &[90, 91, 92]];
        for precision in [Precision::F32, Precision::Bf16, Precision::Fp8] {
            let model = demo(precision);
            let vocab = model.config().vocab_size;
            let last_row = |rows: &[f32]| rows[rows.len() - vocab..].to_vec();
            let mut main: Vec<Sequence> = prompts
                .iter()
                .map(|p| model.new_sequence(p.len() + 8).unwrap())
                .collect();
            let mut mtp: Vec<Sequence> = prompts
                .iter()
                .map(|p| model.new_mtp_sequence(p.len() + 8).unwrap())
                .collect();
            // Oracle over the prompts: fresh sequences, every row.
            let mut main_ref: Vec<Sequence> = prompts
                .iter()
                .map(|p| model.new_sequence(p.len()).unwrap())
                .collect();
            let mut mtp_ref: Vec<Sequence> = prompts
                .iter()
                .map(|p| model.new_mtp_sequence(p.len()).unwrap())
                .collect();
            let (logits, expected) = model
                .forward_with_mtp(
                    &mut main_ref.iter_mut().collect::<Vec<_>>(),
                    &mut mtp_ref.iter_mut().collect::<Vec<_>>(),
                    &prompts,
                )
                .unwrap();
            // The same pairs as the oracle: each prompt shifted by one, then the main model's
            // greedy token.
            let pairs: Vec<Vec<u32>> = prompts
                .iter()
                .zip(&logits.per_sequence)
                .map(|(p, l)| {
                    let mut v = p[1..].to_vec();
                    v.push(greedy_token(&last_row(l)));
                    v
                })
                .collect();
            let pair_refs: Vec<&[u32]> = pairs.iter().map(Vec::as_slice).collect();
            let hidden = model
                .forward_hidden(
                    &mut main.iter_mut().collect::<Vec<_>>(),
                    &prompts,
                    MlaForm::ByLength,
                )
                .unwrap();
            let out = model
                .mtp_hidden(
                    &mut mtp.iter_mut().collect::<Vec<_>>(),
                    &hidden.h.arg(),
                    &pair_refs,
                    MlaForm::ByLength,
                    LogitRows::Last,
                )
                .unwrap();
            assert_eq!(
                out.y.desc.shape[0], 2,
                "{precision:?}: one row per sequence"
            );
            let got = model.mtp_head_logits(&out, LogitRows::Last).unwrap();
            for s in 0..2 {
                assert!(
                    bits(&got.per_sequence[s]) == bits(&last_row(&expected.per_sequence[s])),
                    "{precision:?}: prompt {s}: the last MTP row changed"
                );
                assert_eq!(mtp[s].len(), prompts[s].len(), "every pair is cached");
            }
            // Absorbed form (a speculative round): last rows only against every row, from
            // the same caches.
            let main_len: Vec<usize> = main.iter().map(Sequence::len).collect();
            let mtp_len: Vec<usize> = mtp.iter().map(Sequence::len).collect();
            let mut logits_of = |outputs: LogitRows| {
                for (s, seq) in main.iter_mut().enumerate() {
                    seq.truncate(main_len[s]);
                    mtp[s].truncate(mtp_len[s]);
                }
                let hidden = model
                    .forward_hidden(
                        &mut main.iter_mut().collect::<Vec<_>>(),
                        &next,
                        MlaForm::Absorbed,
                    )
                    .unwrap();
                let out = model
                    .mtp_hidden(
                        &mut mtp.iter_mut().collect::<Vec<_>>(),
                        &hidden.h.arg(),
                        &next,
                        MlaForm::Absorbed,
                        outputs,
                    )
                    .unwrap();
                model.mtp_head_logits(&out, LogitRows::Last).unwrap()
            };
            let all = logits_of(LogitRows::All);
            let last = logits_of(LogitRows::Last);
            for s in 0..2 {
                assert!(
                    bits(&last.per_sequence[s]) == bits(&all.per_sequence[s]),
                    "{precision:?}: absorbed, sequence {s}: the last MTP row changed"
                );
            }
            // A further draft step: one pair per sequence, every row its sequence's last
            // (no gathers): the same bits and one row per sequence either way.
            let step = |outputs: LogitRows, mtp: &mut Vec<Sequence>| {
                for (s, seq) in mtp.iter_mut().enumerate() {
                    seq.truncate(mtp_len[s]);
                }
                let out = model
                    .mtp_hidden(
                        &mut mtp.iter_mut().collect::<Vec<_>>(),
                        &hidden.h.rows(0, 2),
                        &[&[60], &[61]],
                        MlaForm::ByLength,
                        outputs,
                    )
                    .unwrap();
                assert_eq!(
                    out.y.desc.shape[0], 2,
                    "{precision:?}: one row per sequence"
                );
                model.mtp_head_logits(&out, LogitRows::Last).unwrap()
            };
            let (all, last) = (
                step(LogitRows::All, &mut mtp),
                step(LogitRows::Last, &mut mtp),
            );
            for s in 0..2 {
                assert!(
                    bits(&last.per_sequence[s]) == bits(&all.per_sequence[s]),
                    "{precision:?}: draft step, sequence {s}: the MTP row changed"
                );
            }
        }
    }
}
