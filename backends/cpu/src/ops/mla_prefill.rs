//! Naive MLA attention of one sequence (spec §3.2), per query t and head h:
//! `score(u) = dot([q_nope ; q_pe], [k_nope(u) ; k_pe(u)]) · scale` as ONE canonical dot of
//! Dn + Dr terms, over the visible keys u ≤ positions[t]; `p = softmax(score)`;
//! `o[j] = A(Σ_u p_u · v(u)[j])` in canonical order over the visible keys.
//!
//! Masked keys (u > positions[t]) take no part at all: a softmax over all S keys with −∞ for
//! the masked ones gives the same probabilities, and leaving their (exactly zero) value terms
//! out means unwritten cache rows can never leak a NaN into the output.
use concord_core::numerics::math::softmax_in_place;
use concord_core::Result;
use concord_ops::MlaPrefill;
use rayon::prelude::*;

use crate::canonical::{dot_concat, weighted_rows};
use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::storage::{In, Out};

pub(crate) fn run(op: &MlaPrefill, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let (q, q_pe) = (ins[0].f32s()?, ins[1].f32s()?);
    let dims = Dims {
        heads: ins[0].desc.shape[1],
        q_width: ins[0].desc.shape[2],
        nope: op.nope_dim,
        rope: ins[1].desc.shape[2],
        kv_width: ins[2].desc.shape[2],
        keys: ins[2].desc.shape[0],
        scale: op.scale,
    };
    let pos = ins[4].u32s();
    let (kv, k_pe) = (ins[2].act()?, ins[3].act()?);
    dispatch!(outs[0].act()?, ActMut, |out| dispatch!(
        kv,
        Act,
        |kv| dispatch!(k_pe, Act, |k_pe| dims.attend(&q, &q_pe, kv, k_pe, pos, out))
    ));
    Ok(())
}

/// Number of keys a query at absolute position `pos` sees among `keys` cached ones.
pub(crate) fn visible(pos: u32, keys: usize) -> usize {
    (pos as usize).saturating_add(1).min(keys)
}

struct Dims {
    heads: usize,
    q_width: usize,
    nope: usize,
    rope: usize,
    kv_width: usize,
    keys: usize,
    scale: f32,
}

impl Dims {
    #[allow(clippy::too_many_arguments)]
    fn attend<K: Elem, P: Elem, O: OutElem>(
        &self,
        q: &[f32],
        q_pe: &[f32],
        kv: &[K],
        k_pe: &[P],
        pos: &[u32],
        out: &mut [O],
    ) {
        let (n, dn, dr) = (self.heads, self.nope, self.rope);
        let dv = self.kv_width - dn;
        if dv == 0 {
            return;
        }
        out.par_chunks_mut(dv).enumerate().for_each(|(row, o)| {
            let (t, h) = (row / n, row % n);
            let mut qcat = Vec::with_capacity(dn + dr);
            qcat.extend_from_slice(&q[row * self.q_width..row * self.q_width + dn]);
            qcat.extend_from_slice(&q_pe[row * dr..(row + 1) * dr]);
            let s = visible(pos[t], self.keys);
            let kv_row =
                |u: usize| &kv[(u * n + h) * self.kv_width..(u * n + h + 1) * self.kv_width];
            let mut p: Vec<f32> = (0..s)
                .map(|u| {
                    dot_concat(&qcat, &kv_row(u)[..dn], &k_pe[u * dr..(u + 1) * dr]) * self.scale
                })
                .collect();
            softmax_in_place(&mut p);
            let mut acc = vec![0.0f32; dv];
            weighted_rows(&p, |u| &kv_row(u)[dn..], &mut acc);
            for (d, v) in o.iter_mut().zip(&acc) {
                *d = O::store(*v);
            }
        });
    }
}
