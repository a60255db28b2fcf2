//! Per row of d values: `ss = sum_of_squares(x)` (canonical), `mean = ss / d`,
//! `r = rsqrt_for_norm(mean, eps)` (= 1/sqrt(mean + eps)), `y = A(x·r)`, `out = A(w·y)`.
use concord_core::numerics::math::rsqrt_for_norm;
use concord_core::numerics::reduce::sum_of_squares;
use concord_core::Result;
use concord_ops::RmsNorm;
use rayon::prelude::*;

use crate::elem::{dispatch, round_to, ActMut, OutElem};
use crate::storage::{In, Out};

pub(crate) fn run(op: &RmsNorm, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let d = ins[0].desc.shape[1];
    let x = ins[0].f32s()?;
    let w = ins[1].f32s()?;
    if d == 0 {
        return Ok(());
    }
    dispatch!(outs[0].act()?, ActMut, |out| norm(op, &x, &w, out));
    Ok(())
}

fn norm<O: OutElem>(op: &RmsNorm, x: &[f32], w: &[f32], out: &mut [O]) {
    let d = w.len();
    out.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .with_min_len(super::min_rows(x.len() / d, d))
        .for_each(|(o, x)| {
            let mean = sum_of_squares(x) / d as f32;
            let r = rsqrt_for_norm(mean, op.eps);
            for ((dst, xv), wv) in o.iter_mut().zip(x).zip(w) {
                let y = round_to(op.out, xv * r);
                *dst = O::store(wv * y);
            }
        });
}
