//! Interleaved-pair rotation of columns `offset..offset+dim` of every head, at table row
//! `p = positions[t]`: `o0 = A(x0·c − x1·s)`, `o1 = A(x0·s + x1·c)` (each product rounded
//! to f32, then one add). A position past the table is an error.
use concord_core::{Error, Result};
use concord_ops::Rope;
use rayon::prelude::*;

use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::storage::{In, Out};

pub(crate) fn run(op: &Rope, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let (h, w) = (ins[0].desc.shape[1], ins[0].desc.shape[2]);
    let rows = ins[1].desc.shape[0];
    let (cos, sin) = (ins[1].f32s()?, ins[2].f32s()?);
    let pos = ins[3].u32s();
    if let Some(bad) = pos.iter().find(|&&p| p as usize >= rows) {
        return Err(Error::invalid(format!(
            "rope: position {bad} outside a table of {rows} rows"
        )));
    }
    let x = ins[0].act()?;
    let t = Tables {
        cos: &cos,
        sin: &sin,
        pos,
        heads: h,
        width: w,
        offset: op.offset,
        dim: op.dim,
    };
    dispatch!(outs[0].act()?, ActMut, |out| dispatch!(x, Act, |x| t
        .rotate(x, out)));
    Ok(())
}

struct Tables<'a> {
    cos: &'a [f32],
    sin: &'a [f32],
    pos: &'a [u32],
    heads: usize,
    width: usize,
    offset: usize,
    dim: usize,
}

impl Tables<'_> {
    fn rotate<X: Elem, O: OutElem>(&self, x: &[X], out: &mut [O]) {
        let (dim, half) = (self.dim, self.dim / 2);
        if dim == 0 {
            return;
        }
        // One output row per (token, head).
        let rows = out.len() / dim;
        out.par_chunks_mut(dim)
            .with_min_len(super::min_rows(rows, dim))
            .enumerate()
            .for_each(|(row, o)| {
                let t = row / self.heads;
                let p = self.pos[t] as usize;
                let (c, s) = (
                    &self.cos[p * half..(p + 1) * half],
                    &self.sin[p * half..(p + 1) * half],
                );
                let xr = &x[row * self.width + self.offset..row * self.width + self.offset + dim];
                for i in 0..half {
                    let (x0, x1) = (xr[2 * i].f(), xr[2 * i + 1].f());
                    o[2 * i] = O::store(x0 * c[i] - x1 * s[i]);
                    o[2 * i + 1] = O::store(x0 * s[i] + x1 * c[i]);
                }
            });
    }
}
