//! Multi-head latent attention of one layer over a batch of sequences (spec §3).

use concord_core::Result;
use concord_ops::{
    GatherRows, MlaDecode, MlaPrefill, Op, RmsNorm, Rope, ScatterRows, SliceColumns, TensorArg,
    TensorDesc,
};

use super::forward::BatchPlan;
use super::weights::AttentionWeights;
use super::Model;
use crate::exec::DeviceTensor;
use crate::kv_cache::LayerCache;

/// The eps of the two latent RMSNorms (`q_a_layernorm`, `kv_a_layernorm`).
pub(crate) const LATENT_NORM_EPS: f32 = 1e-6;

impl Model {
    /// MLA for all tokens of the batch: `a` [T, H] normalised input, `positions` [T].
    /// Sequences with one new token use the weight-absorbed form over the latent cache, longer
    /// spans the naive form (both per docs/numerics.md) unless the span asks for the absorbed
    /// form ([`super::forward::MlaForm::Absorbed`], speculative verification); the choice
    /// depends only on the sequence itself, so batching never changes its bits. Every precision decodes absorbed
    /// (fp8 with kv_b_proj dequantized to BF16, as DeepSeek's `absorb` mode does), so decode
    /// reads the latent cache once per token and costs O(context), not O(context²).
    pub(crate) fn attention(
        &self,
        a: &TensorArg,
        plan: &BatchPlan,
        w: &AttentionWeights,
        caches: &[&LayerCache],
    ) -> Result<DeviceTensor> {
        let (positions, spans) = (&plan.positions, &plan.spans);
        let c = &self.cfg;
        let act = self.activation();
        let t = a.desc.shape[0];
        // This rank's heads (all of them without tensor parallelism): q_b_proj, kv_b_proj and
        // its absorbed copy hold only their rows.
        let (n, dn, dr, dv, r) = (
            self.local_heads(),
            c.qk_nope_head_dim,
            c.qk_rope_head_dim,
            c.v_head_dim,
            c.kv_lora_rank,
        );
        // q_a_layernorm and kv_a_layernorm are built without the config's eps in transformers
        // (`DeepseekV3RMSNorm(config.q_lora_rank)`) and in DeepSeek's inference/model.py
        // (`RMSNorm(self.q_lora_rank)`): both use the class default, 1e-6, whatever
        // `rms_norm_eps` says (docs/numerics.md §6).
        let eps = LATENT_NORM_EPS;

        // Queries: every row, or each span's last one (`BatchPlan::last_rows`); every row's
        // latent is cached either way.
        let last = plan.last_rows.as_ref();
        let a_last;
        let (a_q, q_positions) = match last {
            Some(l) => {
                a_last = self.exec.apply1(GatherRows, &[a.clone(), l.rows.arg()])?;
                (a_last.arg(), &l.positions)
            }
            None => (a.clone(), positions),
        };
        let a_q = &a_q;
        let tq = a_q.desc.shape[0];
        let q = match (&w.q_lora, &w.q_proj) {
            (Some((qa, qa_norm, qb)), _) => {
                let cq = self.linear(a_q, qa)?;
                let cq = self
                    .exec
                    .apply1(RmsNorm { eps, out: act }, &[cq.arg(), qa_norm.arg()])?;
                self.linear(&cq.arg(), qb)?
            }
            (None, Some(qp)) => self.linear(a_q, qp)?,
            (None, None) => unreachable!("loader guarantees q_lora or q_proj"),
        };
        let q3 = q.arg().reshaped([tq, n, dn + dr]);
        let tables = [self.rope_cos.arg(), self.rope_sin.arg(), positions.arg()];
        let q_pe = self.exec.apply1(
            Rope {
                offset: dn,
                dim: dr,
                out: act,
            },
            &[
                q3.clone(),
                tables[0].clone(),
                tables[1].clone(),
                q_positions.arg(),
            ],
        )?;

        let kv = self.linear(a, &w.kv_a)?;
        let latent = self
            .exec
            .apply1(SliceColumns { start: 0, len: r }, &[kv.arg()])?;
        let latent = self.exec.apply1(
            RmsNorm { eps, out: act },
            &[latent.arg(), w.kv_a_norm.arg()],
        )?;
        let k_pe_raw = self
            .exec
            .apply1(SliceColumns { start: r, len: dr }, &[kv.arg()])?;
        let k_pe = self.exec.apply1(
            Rope {
                offset: 0,
                dim: dr,
                out: act,
            },
            &[
                k_pe_raw.arg().reshaped([t, 1, dr]),
                tables[0].clone(),
                tables[1].clone(),
                tables[2].clone(),
            ],
        )?;
        let k_pe = k_pe.arg().reshaped([t, dr]);

        let out = self.exec.zeros(TensorDesc::new(act, [tq, n * dv]))?;
        for (i, ((span, cache), rows)) in spans.iter().zip(caches).zip(&plan.rows).enumerate() {
            let (first, count) = (span.first, span.count);
            let slots = positions.rows(span.first, span.count);
            // A paged cache writes the rows its block table names, and attention reads the
            // sequence's rows gathered in position order (a copy: the same bits as its own).
            let written = rows.written.as_ref().map_or(slots.clone(), |r| r.arg());
            self.exec.launch(
                &Op::ScatterRows(ScatterRows),
                &[latent.rows(first, count), written.clone()],
                &[cache.latent.arg()],
            )?;
            self.exec.launch(
                &Op::ScatterRows(ScatterRows),
                &[k_pe.rows(first, count), written],
                &[cache.k_pe.arg()],
            )?;
            let keys = span.start + span.count;
            let gathered = match &rows.read {
                Some(read) => Some((
                    self.exec
                        .apply1(GatherRows, &[cache.latent.arg(), read.arg()])?,
                    self.exec
                        .apply1(GatherRows, &[cache.k_pe.arg(), read.arg()])?,
                )),
                None => None,
            };
            let (cached_latent, cached_k_pe) = match &gathered {
                Some((l, k)) => (l.arg(), k.arg()),
                None => (cache.latent.rows(0, keys), cache.k_pe.rows(0, keys)),
            };
            // This span's query rows, their positions and output rows.
            let (q_first, q_count, q_slots) = match last {
                Some(l) => (i, 1, l.positions.rows(i, 1)),
                None => (first, count, slots.clone()),
            };
            let o_rows = out.rows(q_first, q_count).reshaped([q_count, n, dv]);
            let (q_rows, qpe_rows) = (q3.rows(q_first, q_count), q_pe.rows(q_first, q_count));
            if span.absorbed() {
                let op = MlaDecode {
                    nope_dim: dn,
                    v_dim: dv,
                    scale: c.softmax_scale(),
                    out: act,
                };
                self.exec.launch(
                    &op.into(),
                    &[
                        q_rows,
                        qpe_rows,
                        w.kv_b_absorbed()?.arg(),
                        cached_latent,
                        cached_k_pe,
                        q_slots.clone(),
                    ],
                    &[o_rows],
                )?;
            } else {
                let kv_full = self.linear(&cached_latent, &w.kv_b)?;
                let op = MlaPrefill {
                    nope_dim: dn,
                    scale: c.softmax_scale(),
                    out: act,
                };
                self.exec.launch(
                    &op.into(),
                    &[
                        q_rows,
                        qpe_rows,
                        kv_full.arg().reshaped([keys, n, dn + dv]),
                        cached_k_pe,
                        q_slots.clone(),
                    ],
                    &[o_rows],
                )?;
            }
        }
        // Tensor parallelism: every rank's heads side by side ([T, heads·Dv] in head order),
        // then this rank's output columns of o_proj, gathered likewise — two gathers of whole
        // values instead of a row-parallel o_proj's all-reduce of partial dots, which would
        // change the bits (docs/numerics.md "Parallel layouts").
        let out = self.gather_columns(out)?;
        let y = self.linear(&out.arg(), &w.o_proj)?;
        self.gather_columns(y)
    }
}
