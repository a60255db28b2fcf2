//! `out = A(a + b)`: one f32 add of the two (exactly widened) operands, one rounding.
use concord_core::Result;
use concord_ops::Add;
use rayon::prelude::*;

use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::storage::{In, Out};

/// Elements per parallel task of the elementwise ops.
pub(crate) const CHUNK: usize = 4096;

pub(crate) fn run(_op: &Add, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let (a, b) = (ins[0].act()?, ins[1].act()?);
    dispatch!(outs[0].act()?, ActMut, |out| dispatch!(
        a,
        Act,
        |a| dispatch!(b, Act, |b| add(a, b, out))
    ));
    Ok(())
}

fn add<A: Elem, B: Elem, O: OutElem>(a: &[A], b: &[B], out: &mut [O]) {
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| {
            for ((d, x), y) in o.iter_mut().zip(a).zip(b) {
                *d = O::store(x.f() + y.f());
            }
        });
}
