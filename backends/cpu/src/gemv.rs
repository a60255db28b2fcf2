//! Decode's block-scaled FP8 `y = x · wᵀ` for a single row of x (m == 1): a GEMV that
//! streams each weight byte once, [`ROWS`] weight rows at a time sharing every load of x,
//! with the e4m3 codes of x and w decoded in registers — no table, no temporary tile, no
//! allocation.
//!
//! The row kernel is compiled once per instruction set and picked at run time
//! (`multiversion`: AVX-512, AVX2, NEON, and the baseline); every clone runs the same
//! additions in the same order (`lanes::block_dots`), so the bits never depend on the ISA,
//! the thread count or how rows are split.
//!
//! BF16/F32 weights keep `gemm`'s row-at-a-time canonical dot: the same kind of kernel for
//! them was faster alone (1.4–1.6×) but slower inside the model's decode step (see
//! docs/benchmarks.md, CPU section). Where the CPU has AVX512-BF16 and the operands qualify,
//! `gemv_pairdot` takes one row of x instead (BF16 and FP8 weights), split by [`split_rows`].
use concord_core::numerics::reduce::REDUCE_BLOCK;
use multiversion::multiversion;
use rayon::prelude::*;

use crate::elem::OutElem;
use crate::gemm::Fp8Weight;
use crate::lanes::block_dots;

/// Weight rows whose dots advance together, sharing each load of x.
const ROWS: usize = 4;
/// Multiply-adds below which an op is one task: splitting it costs more than the work.
const SERIAL_WORK: usize = 1 << 16;
/// Multiply-adds a parallel task gets at least.
const TASK_WORK: usize = 1 << 15;
/// Tasks per thread when an op is split, so a core slowed by other load is balanced out.
const TASKS_PER_THREAD: usize = 4;

/// Runs `f` as one task on a rayon worker (on this thread if it is one). Between two ops
/// the workers are still awake, spinning for the next job; work done meanwhile on the
/// caller's thread competes with them for the cores (measured slower), a waiting caller
/// does not.
pub(crate) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

/// Splits the n outputs of a GEMV over k-term dots into tasks of whole [`ROWS`] groups;
/// `rows(j0, out)` computes outputs j0 .. j0 + out.len(). Small ops run as one task.
pub(crate) fn split_rows<O: Send>(out: &mut [O], k: usize, rows: impl Fn(usize, &mut [O]) + Sync) {
    let n = out.len();
    let threads = rayon::current_num_threads();
    if n.saturating_mul(k.max(1)) <= SERIAL_WORK || threads <= 1 {
        on_pool(|| rows(0, out));
        return;
    }
    let per = (TASK_WORK / k.max(1))
        .max(n.div_ceil(threads * TASKS_PER_THREAD))
        .next_multiple_of(ROWS);
    out.par_chunks_mut(per)
        .enumerate()
        .for_each(|(t, o)| rows(t * per, o));
}

/// The block-scaled FP8 product of spec §6.6 for one row of activation codes `xq` [k] with
/// scales `xs` [⌈k/128⌉]: `out[j] = A(Σ_kb (b_kb · xs[kb]) · ws[j/bn, kb])`, the outer sum
/// in kb order from +0.0 — exactly `gemm_fp8` for m == 1.
pub(crate) fn gemv_fp8<O: OutElem>(xq: &[u8], xs: &[f32], k: usize, w: &Fp8Weight, out: &mut [O]) {
    debug_assert!(xq.len() == k && w.codes.len() == out.len() * k);
    split_rows(out, k, |j0, o| {
        fp8_rows(xq, xs, k, w.codes, w.scales, w.block_rows, j0, o)
    });
}

/// Outputs j0 .. j0 + out.len() of [`gemv_fp8`].
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
fn fp8_rows<O: OutElem>(
    xq: &[u8],
    xs: &[f32],
    k: usize,
    codes: &[u8],
    scales: &[f32],
    block_rows: usize,
    j0: usize,
    out: &mut [O],
) {
    let kb = k.div_ceil(REDUCE_BLOCK);
    let row = |j: usize| &codes[j * k..(j + 1) * k];
    let srow = |j: usize| &scales[(j / block_rows) * kb..(j / block_rows + 1) * kb];
    let mut groups = out.chunks_exact_mut(ROWS);
    let mut j = j0;
    for o in &mut groups {
        let rows: [&[u8]; ROWS] = std::array::from_fn(|r| row(j + r));
        let sr: [&[f32]; ROWS] = std::array::from_fn(|r| srow(j + r));
        let mut total = [0.0f32; ROWS];
        for (bi, b) in (0..k).step_by(REDUCE_BLOCK).enumerate() {
            let e = (b + REDUCE_BLOCK).min(k);
            let s = block_dots(&xq[b..e], rows.map(|r| &r[b..e]));
            for r in 0..ROWS {
                total[r] += (s[r] * xs[bi]) * sr[r][bi];
            }
        }
        for (d, t) in o.iter_mut().zip(total) {
            *d = O::store(t);
        }
        j += ROWS;
    }
    for (i, d) in groups.into_remainder().iter_mut().enumerate() {
        let (wr, sr) = (row(j + i), srow(j + i));
        let mut total = 0.0f32;
        for (bi, b) in (0..k).step_by(REDUCE_BLOCK).enumerate() {
            let e = (b + REDUCE_BLOCK).min(k);
            total += (block_dots(&xq[b..e], [&wr[b..e]])[0] * xs[bi]) * sr[bi];
        }
        *d = O::store(total);
    }
}
