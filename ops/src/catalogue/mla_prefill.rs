use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::{activation_out, arity, ACTIVATION};
use crate::op::OpContract;
use crate::TensorDesc;

/// Naive MLA attention of one sequence: `o = A(Σ_u softmax_u(scale·[q_nope;q_pe]·[k_nope;k_pe(u)]) v(u))`
/// over keys u ≤ positions[t] — q [T,N,Dn+Dr] (first Dn columns used), q_pe [T,N,Dr],
/// kv [S,N,Dn+Dv] (kv_b_proj output: k_nope then v), k_pe [S,Dr], positions U32 [T] → [T,N,Dv].
/// Key u sits at absolute position u.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlaPrefill {
    /// qk_nope_head_dim.
    pub nope_dim: usize,
    /// Softmax scale (spec §3.4, includes YaRN's m²).
    pub scale: f32,
    /// Output (activation) dtype.
    pub out: DType,
}

impl OpContract for MlaPrefill {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [q, q_pe, kv, k_pe, pos] = arity("mla_prefill", inputs, 5)? else {
            unreachable!()
        };
        activation_out("mla_prefill", self.out)?;
        for (t, what) in [
            (q, "mla_prefill q"),
            (q_pe, "mla_prefill q_pe"),
            (kv, "mla_prefill kv"),
        ] {
            t.expect_rank(3, what)?.expect_dtype(ACTIVATION, what)?;
        }
        let (t, n, dr) = (q.shape[0], q.shape[1], q_pe.shape[2]);
        if q.shape[2] != self.nope_dim + dr || q_pe.shape[..2] != [t, n] {
            return Err(Error::invalid(format!(
                "mla_prefill: q {:?} and q_pe {:?} disagree with nope_dim {}",
                q.shape, q_pe.shape, self.nope_dim
            )));
        }
        let s = kv.shape[0];
        kv.expect_dim(1, n, "mla_prefill kv heads")?;
        if kv.shape[2] <= self.nope_dim {
            return Err(Error::invalid(format!(
                "mla_prefill kv {:?}: no value columns",
                kv.shape
            )));
        }
        k_pe.expect_rank(2, "mla_prefill k_pe")?
            .expect_dtype(ACTIVATION, "mla_prefill k_pe")?
            .expect_dim(0, s, "mla_prefill k_pe")?
            .expect_dim(1, dr, "mla_prefill k_pe")?;
        pos.expect_rank(1, "mla_prefill positions")?
            .expect_dtype(&[DType::U32], "mla_prefill positions")?
            .expect_dim(0, t, "mla_prefill positions")?;
        Ok(vec![TensorDesc::new(
            self.out,
            [t, n, kv.shape[2] - self.nope_dim],
        )])
    }
}
