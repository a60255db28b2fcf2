//! `y[m, n] = A(dot(x[m, :], w[n, :]))` with the canonical dot; F32 or BF16 weights.
use concord_core::Result;
use concord_ops::Matmul;

use crate::elem::{dispatch, Act, ActMut};
use crate::gemm::gemm;
use crate::storage::{In, Out};

pub(crate) fn run(_op: &Matmul, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let x = ins[0].f32s()?;
    let k = ins[0].desc.shape[1];
    let n = ins[1].desc.shape[0];
    let w = ins[1].act()?;
    let pair_safe = ins[1].pair_safe();
    dispatch!(outs[0].act()?, ActMut, |out| dispatch!(w, Act, |w| gemm(
        &x, k, w, n, out, pair_safe
    )));
    Ok(())
}
