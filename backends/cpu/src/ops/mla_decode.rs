//! Weight-absorbed MLA over the latent cache (spec §3.5), per query t and head h, with
//! `W = wkv_b` rows `h·(Dn+Dv) ..`:
//! `q_lat[c] = Σ_j W[j, c]·q_nope[j]` (canonical over j, f32, not rounded);
//! `score(u) = (dot(q_lat, latent[u]) + dot(q_pe, k_pe[u])) · scale` over the visible keys
//! u ≤ positions[t]; `p = softmax(score)`; `o_lat[c] = Σ_u p_u·latent[u, c]` (canonical, f32);
//! `o[j] = A(dot(W[Dn + j, :], o_lat))`. Masked keys take no part (as in mla_prefill).
use concord_core::numerics::math::softmax_in_place;
use concord_core::Result;
use concord_ops::MlaDecode;
use rayon::prelude::*;

use super::mla_prefill::visible;
use crate::canonical::{dot, weighted_rows};
use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::storage::{In, Out};

pub(crate) fn run(op: &MlaDecode, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let (q, q_pe) = (ins[0].f32s()?, ins[1].f32s()?);
    let dims = Dims {
        heads: ins[0].desc.shape[1],
        q_width: ins[0].desc.shape[2],
        nope: op.nope_dim,
        v_dim: op.v_dim,
        rope: ins[1].desc.shape[2],
        rank: ins[2].desc.shape[1],
        keys: ins[3].desc.shape[0],
        scale: op.scale,
    };
    let pos = ins[5].u32s();
    let (w, latent, k_pe) = (ins[2].act()?, ins[3].act()?, ins[4].act()?);
    dispatch!(outs[0].act()?, ActMut, |out| dispatch!(
        w,
        Act,
        |w| dispatch!(latent, Act, |latent| dispatch!(k_pe, Act, |k_pe| dims
            .attend(&q, &q_pe, w, latent, k_pe, pos, out)))
    ));
    Ok(())
}

struct Dims {
    heads: usize,
    q_width: usize,
    nope: usize,
    v_dim: usize,
    rope: usize,
    rank: usize,
    keys: usize,
    scale: f32,
}

impl Dims {
    #[allow(clippy::too_many_arguments)]
    fn attend<W: Elem, L: Elem, P: Elem, O: OutElem>(
        &self,
        q: &[f32],
        q_pe: &[f32],
        w: &[W],
        latent: &[L],
        k_pe: &[P],
        pos: &[u32],
        out: &mut [O],
    ) {
        let (n, dn, dv, dr, r) = (self.heads, self.nope, self.v_dim, self.rope, self.rank);
        if dv == 0 {
            return;
        }
        let w_row = |row: usize| &w[row * r..(row + 1) * r];
        out.par_chunks_mut(dv).enumerate().for_each(|(row, o)| {
            let (t, h) = (row / n, row % n);
            let base = h * (dn + dv);
            let q_nope = &q[row * self.q_width..row * self.q_width + dn];
            let q_rope = &q_pe[row * dr..(row + 1) * dr];
            let mut q_lat = vec![0.0f32; r];
            weighted_rows(q_nope, |j| w_row(base + j), &mut q_lat);
            let s = visible(pos[t], self.keys);
            let mut p: Vec<f32> = (0..s)
                .map(|u| {
                    let lat = dot(&q_lat, &latent[u * r..(u + 1) * r]);
                    let pe = dot(q_rope, &k_pe[u * dr..(u + 1) * dr]);
                    (lat + pe) * self.scale
                })
                .collect();
            softmax_in_place(&mut p);
            let mut o_lat = vec![0.0f32; r];
            weighted_rows(&p, |u| &latent[u * r..(u + 1) * r], &mut o_lat);
            for (j, d) in o.iter_mut().enumerate() {
                *d = O::store(dot(&o_lat, w_row(base + dn + j)));
            }
        });
    }
}
