//! `y[m,n] = A(Σ_kb (b_kb · xs[m,kb]) · ws[n/bn, kb])` with `b_kb` the canonical within-block
//! sum of `decode(xq)·decode(w)` over the 128 columns of block kb; the outer sum in kb order
//! from +0.0 (spec §6.6).
use concord_core::Result;
use concord_ops::BlockFp8Matmul;

use crate::elem::{dispatch, ActMut};
use crate::gemm::{gemm_fp8, Fp8Weight};
use crate::storage::{In, Out};

pub(crate) fn run(op: &BlockFp8Matmul, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let k = ins[0].desc.shape[1];
    let xq = ins[0].u8s();
    let xs = ins[1].f32s()?;
    let n = ins[2].desc.shape[0];
    let ws = ins[3].f32s()?;
    let w = Fp8Weight {
        codes: ins[2].u8s(),
        scales: &ws,
        block_rows: op.block[0],
        pair_safe: ins[2].pair_safe(),
    };
    dispatch!(outs[0].act()?, ActMut, |out| gemm_fp8(
        xq, &xs, k, &w, n, out
    ));
    Ok(())
}
