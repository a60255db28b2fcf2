use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::{activation_out, arity, ACTIVATION, DENSE_WEIGHT};
use crate::op::OpContract;
use crate::TensorDesc;

/// Weight-absorbed MLA over the latent cache of one sequence (spec §3.5):
/// `q_lat = W_UKᵀ q_nope`, `s(u) = scale·(q_lat·c(u) + q_pe·k_pe(u))`, `o = A(W_UV Σ_u p_u c(u))`
/// over u ≤ positions[t] — q [T,N,Dn+Dr], q_pe [T,N,Dr], wkv_b [N·(Dn+Dv), R] F32|BF16,
/// latent [S,R], k_pe [S,Dr], positions U32 [T] → [T,N,Dv].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlaDecode {
    /// qk_nope_head_dim.
    pub nope_dim: usize,
    /// v_head_dim.
    pub v_dim: usize,
    /// Softmax scale (spec §3.4).
    pub scale: f32,
    /// Output (activation) dtype.
    pub out: DType,
}

impl OpContract for MlaDecode {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [q, q_pe, wkv_b, latent, k_pe, pos] = arity("mla_decode", inputs, 6)? else {
            unreachable!()
        };
        activation_out("mla_decode", self.out)?;
        for (t, what) in [(q, "mla_decode q"), (q_pe, "mla_decode q_pe")] {
            t.expect_rank(3, what)?.expect_dtype(ACTIVATION, what)?;
        }
        let (t, n, dr) = (q.shape[0], q.shape[1], q_pe.shape[2]);
        if q.shape[2] != self.nope_dim + dr || q_pe.shape[..2] != [t, n] {
            return Err(Error::invalid(format!(
                "mla_decode: q {:?} and q_pe {:?} disagree with nope_dim {}",
                q.shape, q_pe.shape, self.nope_dim
            )));
        }
        wkv_b
            .expect_rank(2, "mla_decode wkv_b")?
            .expect_dtype(DENSE_WEIGHT, "mla_decode wkv_b")?
            .expect_dim(0, n * (self.nope_dim + self.v_dim), "mla_decode wkv_b rows")?;
        let r = wkv_b.shape[1];
        latent
            .expect_rank(2, "mla_decode latent")?
            .expect_dtype(ACTIVATION, "mla_decode latent")?
            .expect_dim(1, r, "mla_decode latent")?;
        let s = latent.shape[0];
        k_pe.expect_rank(2, "mla_decode k_pe")?
            .expect_dtype(ACTIVATION, "mla_decode k_pe")?
            .expect_dim(0, s, "mla_decode k_pe")?
            .expect_dim(1, dr, "mla_decode k_pe")?;
        pos.expect_rank(1, "mla_decode positions")?
            .expect_dtype(&[DType::U32], "mla_decode positions")?
            .expect_dim(0, t, "mla_decode positions")?;
        Ok(vec![TensorDesc::new(self.out, [t, n, self.v_dim])])
    }
}
