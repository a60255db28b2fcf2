//! Routed experts: for token t and rank k with `e = ids[t,k]`:
//! `g = A(x·gate_eᵀ)`, `u = A(x·up_eᵀ)`, `h = A(silu(g)·u)`, `eo = A(h·down_eᵀ)`, then
//! `y = y + w[t,k]·eo` over k in order from +0.0 (f32) and `out = A(y)`.
//!
//! Dense weights use the canonical dot (as matmul); BlockFp8 weights quantize x and h per
//! 128 columns and multiply exactly as fp8_act_quant + block_fp8_matmul, with the expert's
//! slice of each scale tensor (activation scales in the op's `scale_fmt`). Tokens are grouped by expert so each expert's weights are read
//! once per group; every element is still computed by the same sequential code.
use concord_core::{ActScaleFormat, Error, Result};
use concord_ops::{ExpertWeights, MoeExperts, FP8_ACT_BLOCK};
use rayon::prelude::*;

use super::quantize_row;
use super::swiglu::swiglu_elem;
use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::gemm::{gemm, gemm_fp8, Fp8Weight};
use crate::storage::{In, Out};

/// Tokens whose expert outputs are held at once.
const TOKEN_CHUNK: usize = 256;

/// One projection matrix of all experts: [E, rows, cols], with whether every value is
/// safe for the pair-dot tier (`In::pair_safe`).
enum Proj<'a> {
    Dense(Act<'a>, bool),
    Fp8 {
        codes: &'a [u8],
        scales: &'a [f32],
        pair_safe: bool,
    },
}

struct Experts<'a> {
    gate: Proj<'a>,
    up: Proj<'a>,
    down: Proj<'a>,
    hidden: usize,
    inter: usize,
    block_rows: usize,
    /// How the FP8 projections' activation scales are stored (unused for Dense weights).
    scale_fmt: ActScaleFormat,
}

pub(crate) fn run(op: &MoeExperts, ins: &[In], outs: &mut [Out]) -> Result<()> {
    let h = ins[0].desc.shape[1];
    let (e, i) = (ins[3].desc.shape[0], ins[3].desc.shape[1]);
    let ids = ins[1].u32s();
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= e) {
        return Err(Error::invalid(format!(
            "moe_experts: expert id {bad} outside {e} experts"
        )));
    }
    let k = ins[1].desc.shape[1];
    let x = ins[0].f32s()?;
    let w = ins[2].f32s()?;
    let scales: Vec<_>;
    let experts = match op.weights {
        ExpertWeights::Dense => Experts {
            gate: Proj::Dense(ins[3].act()?, ins[3].pair_safe()),
            up: Proj::Dense(ins[4].act()?, ins[4].pair_safe()),
            down: Proj::Dense(ins[5].act()?, ins[5].pair_safe()),
            hidden: h,
            inter: i,
            block_rows: 1,
            scale_fmt: ActScaleFormat::default(),
        },
        ExpertWeights::BlockFp8 { block, scale_fmt } => {
            scales = [4, 6, 8]
                .iter()
                .map(|&j| ins[j].f32s())
                .collect::<Result<_>>()?;
            let fp8 = |j: usize, s: usize| Proj::Fp8 {
                codes: ins[j].u8s(),
                scales: &scales[s],
                pair_safe: ins[j].pair_safe(),
            };
            Experts {
                gate: fp8(3, 0),
                up: fp8(5, 1),
                down: fp8(7, 2),
                hidden: h,
                inter: i,
                block_rows: block[0],
                scale_fmt,
            }
        }
    };
    dispatch!(outs[0].act()?, ActMut, |out| experts
        .run(&x, ids, &w, k, e, out));
    Ok(())
}

impl Experts<'_> {
    fn run<O: OutElem + Elem>(
        &self,
        x: &[f32],
        ids: &[u32],
        w: &[f32],
        k: usize,
        e: usize,
        out: &mut [O],
    ) {
        let h = self.hidden;
        if h == 0 || k == 0 {
            return;
        }
        let t = x.len() / h;
        for c0 in (0..t).step_by(TOKEN_CHUNK) {
            let c1 = (c0 + TOKEN_CHUNK).min(t);
            // eo[(t - c0)·k + rank] rows of h values, already rounded to A.
            let mut eo = vec![0.0f32; (c1 - c0) * k * h];
            for ex in 0..e {
                let slots: Vec<usize> = (c0 * k..c1 * k)
                    .filter(|&s| ids[s] as usize == ex)
                    .collect();
                if slots.is_empty() {
                    continue;
                }
                let xs: Vec<f32> = slots
                    .iter()
                    .flat_map(|&s| x[(s / k) * h..(s / k + 1) * h].iter().copied())
                    .collect();
                let y = self.expert::<O>(ex, &xs, slots.len());
                for (r, &s) in slots.iter().enumerate() {
                    let d = (s - c0 * k) * h;
                    eo[d..d + h].copy_from_slice(&y[r * h..(r + 1) * h]);
                }
            }
            out[c0 * h..c1 * h]
                .par_chunks_mut(h)
                .enumerate()
                .for_each(|(r, o)| {
                    let tok = c0 + r;
                    let mut y = vec![0.0f32; h];
                    for rank in 0..k {
                        let wk = w[tok * k + rank];
                        let row = &eo[(r * k + rank) * h..(r * k + rank + 1) * h];
                        for (a, v) in y.iter_mut().zip(row) {
                            *a += wk * *v;
                        }
                    }
                    for (d, v) in o.iter_mut().zip(&y) {
                        *d = O::store(*v);
                    }
                });
        }
    }

    /// One expert on m rows of x [m, H] → eo [m, H] (values rounded to A, as f32).
    fn expert<O: OutElem + Elem>(&self, ex: usize, x: &[f32], m: usize) -> Vec<f32> {
        let (h, i) = (self.hidden, self.inter);
        let g = self.project::<O>(&self.gate, ex, x, m, h, i);
        let u = self.project::<O>(&self.up, ex, x, m, h, i);
        let act: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(g, u)| swiglu_elem::<O>(*g, *u).f())
            .collect();
        self.project::<O>(&self.down, ex, &act, m, i, h)
    }

    /// `A(x · W_exᵀ)` for x [m, cols] and expert ex's matrix [rows, cols], as f32.
    fn project<O: OutElem + Elem>(
        &self,
        p: &Proj,
        ex: usize,
        x: &[f32],
        m: usize,
        cols: usize,
        rows: usize,
    ) -> Vec<f32> {
        let mut y = vec![O::store(0.0); m * rows];
        let range = ex * rows * cols..(ex + 1) * rows * cols;
        match p {
            Proj::Dense(w, safe) => {
                dispatch!(w, Act, |w| gemm(x, cols, &w[range], rows, &mut y, *safe))
            }
            Proj::Fp8 {
                codes,
                scales,
                pair_safe,
            } => {
                let kb = cols.div_ceil(FP8_ACT_BLOCK);
                let per_expert = rows.div_ceil(self.block_rows) * kb;
                let mut q = vec![0u8; m * cols];
                let mut xs = vec![0.0f32; m * kb];
                if cols > 0 {
                    q.par_chunks_mut(cols)
                        .zip(xs.par_chunks_mut(kb))
                        .zip(x.par_chunks(cols))
                        .for_each(|((q, s), x)| quantize_row(x, q, s, self.scale_fmt));
                }
                let w = Fp8Weight {
                    codes: &codes[range],
                    scales: &scales[ex * per_expert..(ex + 1) * per_expert],
                    block_rows: self.block_rows,
                    pair_safe: *pair_safe,
                };
                gemm_fp8(&q, &xs, cols, &w, rows, &mut y);
            }
        }
        y.iter().map(|v| v.f()).collect()
    }
}
