//! `out = A(silu(g) · u)` with the contract's `silu` (`math::silu`), one f32 product, one
//! rounding.
use concord_core::Result;
use concord_ops::Swiglu;
use rayon::prelude::*;

use super::add::CHUNK;
use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::softmax::exp_in_place;
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

/// Elements whose `exp(-g)` are computed together.
const EXP_RUN: usize = 64;

/// `put(i, silu(g[i])·u[i])` for every i, the product in f32 before the caller's rounding:
/// the single definition the swiglu op and moe_experts use. `silu(x) = x / (1 + exp(-x))`
/// with the contract's exp (`math::silu`), then one f32 product. The exps run [`EXP_RUN`] at
/// a time on the vectorised kernel (`softmax::exp_in_place`, bit-identical); the division,
/// the add and the product are the scalar ones.
pub(crate) fn silu_products<G: Elem, U: Elem>(g: &[G], u: &[U], mut put: impl FnMut(usize, f32)) {
    let mut e = [0.0f32; EXP_RUN];
    for (c, (g, u)) in g.chunks(EXP_RUN).zip(u.chunks(EXP_RUN)).enumerate() {
        let e = &mut e[..g.len().min(u.len())];
        for (d, x) in e.iter_mut().zip(g) {
            *d = -x.f();
        }
        exp_in_place(e);
        for (i, ((x, y), ex)) in g.iter().zip(u).zip(e.iter()).enumerate() {
            put(c * EXP_RUN + i, (x.f() / (1.0 + ex)) * y.f());
        }
    }
}

fn swiglu<G: Elem, U: Elem, O: OutElem>(g: &[G], u: &[U], out: &mut [O]) {
    out.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
        .for_each(|(o, (g, u))| silu_products(g, u, |i, v| o[i] = O::store(v)));
}
