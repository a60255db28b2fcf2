//! `out = A(silu(g) · u)` with the contract's `silu`, one f32 product, one rounding.
use concord_core::numerics::math::silu;
use concord_core::Result;
use concord_ops::Swiglu;
use rayon::prelude::*;

use super::add::CHUNK;
use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::storage::{In, Out};

pub(crate) fn run(_op: &Swiglu, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let (g, u) = (ins[0].act()?, ins[1].act()?);
    dispatch!(outs[0].act()?, ActMut, |out| dispatch!(
        g,
        Act,
        |g| dispatch!(u, Act, |u| swiglu(g, u, out))
    ));
    Ok(())
}

/// `A(silu(g)·u)` for one element: the single definition moe_experts uses too.
#[inline]
pub(crate) fn swiglu_elem<O: OutElem>(g: f32, u: f32) -> O {
    O::store(silu(g) * u)
}

fn swiglu<G: Elem, U: Elem, O: OutElem>(g: &[G], u: &[U], out: &mut [O]) {
    out.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
        .for_each(|(o, (g, u))| {
            for ((d, x), y) in o.iter_mut().zip(g).zip(u) {
                *d = swiglu_elem(x.f(), y.f());
            }
        });
}
