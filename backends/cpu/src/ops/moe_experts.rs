//! Routed experts: for token t and rank k with `e = ids[t,k]`:
//! `g = A(x·gate_eᵀ)`, `u = A(x·up_eᵀ)`, `h = A(silu(g)·u)`, `eo = A(h·down_eᵀ)`, then
//! `y = y + w[t,k]·eo` over k in order from +0.0 (f32) and `out = A(y)`.
//!
//! Dense weights use the canonical dot (as matmul); BlockFp8 weights quantize x and h per
//! 128 columns and multiply exactly as fp8_act_quant + block_fp8_matmul, with the expert's
//! slice of each scale tensor (activation scales in the op's `scale_fmt`).
//!
//! Tokens are grouped by expert so each expert's weights are read once per group, and the
//! groups run in parallel ACROSS experts (a large group split in blocks of rows), each task
//! on its own part of one workspace; every element is still computed by the same code, and
//! the combine adds the ranks in order, so the bits never depend on the split.
use concord_core::{ActScaleFormat, Error, Result};
use concord_ops::{ExpertWeights, MoeExperts, FP8_ACT_BLOCK};
use rayon::prelude::*;

use super::quantize_row;
use super::swiglu::silu_products;
use crate::elem::{dispatch, Act, ActMut, Elem, OutElem};
use crate::gemm::{gemm, gemm_fp8, Fp8Weight};
use crate::gemv::on_pool;
use crate::storage::{In, Out};

/// Tokens whose expert outputs are held at once.
const TOKEN_CHUNK: usize = 256;
/// Rows below which an expert's group is never split (its weights are read once per task).
const MIN_TASK_ROWS: usize = 32;
/// Tasks per thread when groups are split, so a core slowed by other load is balanced out.
const TASKS_PER_THREAD: usize = 4;

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
    // Several parallel passes (tasks, nested GEMMs, combine): run them from a pool worker,
    // where each fork and join is cheap, instead of injecting every pass from this thread.
    dispatch!(outs[0].act()?, ActMut, |out| on_pool(
        || experts.run(&x, ids, &w, k, e, out)
    ));
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
        let mut groups = Groups::default();
        let mut space = Workspace::<O>::default();
        for c0 in (0..t).step_by(TOKEN_CHUNK) {
            let c1 = (c0 + TOKEN_CHUNK).min(t);
            let slots = &ids[c0 * k..c1 * k];
            groups.sort(slots, e);
            space.size(slots.len(), self);
            let tasks = space.tasks(&groups, self);
            // Largest first, one task per job: the idle thread steals what is left, and the
            // small tasks at the end even out the finish.
            tasks
                .into_par_iter()
                .with_max_len(1)
                .for_each(|task| self.expert(task, &x[c0 * h..c1 * h], k));
            let eo = &space.out;
            out[c0 * h..c1 * h]
                .par_chunks_mut(h)
                .with_min_len(super::min_rows(c1 - c0, h * k))
                .enumerate()
                .for_each_init(
                    || vec![0.0f32; h],
                    |y, (r, o)| {
                        y.fill(0.0);
                        for rank in 0..k {
                            let wk = w[(c0 + r) * k + rank];
                            let p = groups.place[r * k + rank];
                            for (a, v) in y.iter_mut().zip(&eo[p * h..(p + 1) * h]) {
                                *a += wk * v.f();
                            }
                        }
                        for (d, v) in o.iter_mut().zip(y.iter()) {
                            *d = O::store(*v);
                        }
                    },
                );
        }
    }

    /// One task: rows `task.slots` of one expert (slot s is token s / k of `x`) →
    /// `task.out` [rows, H], values rounded to A.
    fn expert<O: OutElem + Elem>(&self, task: Task<O>, x: &[f32], k: usize) {
        let (h, i) = (self.hidden, self.inter);
        let m = task.slots.len();
        for (d, &s) in task.x.chunks_exact_mut(h).zip(task.slots) {
            d.copy_from_slice(&x[(s / k) * h..(s / k + 1) * h]);
        }
        let ex = task.expert;
        let q = task.codes;
        let qs = task.scales;
        // FP8: up reads the quantization of x that gate made.
        self.project(&self.gate, ex, task.x, m, h, i, task.gate, q, qs, true);
        self.project(&self.up, ex, task.x, m, h, i, task.up, q, qs, false);
        let act = &mut *task.act;
        silu_products(task.gate, task.up, |j, v| act[j] = O::store(v).f());
        self.project(&self.down, ex, task.act, m, i, h, task.out, q, qs, true);
    }

    /// `y = A(x · W_exᵀ)` for x [m, cols] and expert ex's matrix [rows, cols]; `codes` and
    /// `scales` hold x's FP8 quantization when the weights are FP8, made here if `quantize`
    /// (else they already hold this x's, from the previous projection).
    #[allow(clippy::too_many_arguments)]
    fn project<O: OutElem + Elem>(
        &self,
        p: &Proj,
        ex: usize,
        x: &[f32],
        m: usize,
        cols: usize,
        rows: usize,
        y: &mut [O],
        codes: &mut [u8],
        scales: &mut [f32],
        quantize: bool,
    ) {
        let range = ex * rows * cols..(ex + 1) * rows * cols;
        match p {
            Proj::Dense(w, safe) => {
                dispatch!(w, Act, |w| gemm(x, cols, &w[range], rows, y, *safe))
            }
            Proj::Fp8 {
                codes: wc,
                scales: ws,
                pair_safe,
            } => {
                let kb = cols.div_ceil(FP8_ACT_BLOCK);
                let per_expert = rows.div_ceil(self.block_rows) * kb;
                let (q, xs) = (&mut codes[..m * cols], &mut scales[..m * kb]);
                if quantize && cols > 0 {
                    for ((q, s), x) in q
                        .chunks_exact_mut(cols)
                        .zip(xs.chunks_exact_mut(kb))
                        .zip(x.chunks_exact(cols))
                    {
                        quantize_row(x, q, s, self.scale_fmt);
                    }
                }
                let w = Fp8Weight {
                    codes: &wc[range],
                    scales: &ws[ex * per_expert..(ex + 1) * per_expert],
                    block_rows: self.block_rows,
                    pair_safe: *pair_safe,
                };
                gemm_fp8(q, xs, cols, &w, rows, y);
            }
        }
    }
}

/// The slots (token·k + rank) of a token chunk grouped by expert, in slot order within a
/// group: a counting sort, its buffers reused from chunk to chunk.
#[derive(Default)]
struct Groups {
    /// Slots (relative to the chunk) by expert: group ex is `order[start[ex]..start[ex+1]]`.
    order: Vec<usize>,
    start: Vec<usize>,
    /// Where slot s sits in `order` (its row of the expert outputs).
    place: Vec<usize>,
}

impl Groups {
    fn sort(&mut self, ids: &[u32], experts: usize) {
        self.start.clear();
        self.start.resize(experts + 1, 0);
        for &id in ids {
            self.start[id as usize + 1] += 1;
        }
        for ex in 0..experts {
            self.start[ex + 1] += self.start[ex];
        }
        let mut next = self.start[..experts].to_vec();
        self.order.resize(ids.len(), 0);
        self.place.resize(ids.len(), 0);
        for (s, &id) in ids.iter().enumerate() {
            let p = &mut next[id as usize];
            self.order[*p] = s;
            self.place[s] = *p;
            *p += 1;
        }
    }
}

/// Buffers of one token chunk, rows in `Groups::order`; each task takes its rows' part.
struct Workspace<O> {
    x: Vec<f32>,
    gate: Vec<O>,
    up: Vec<O>,
    act: Vec<f32>,
    codes: Vec<u8>,
    scales: Vec<f32>,
    out: Vec<O>,
}

impl<O> Default for Workspace<O> {
    fn default() -> Self {
        Workspace {
            x: Vec::new(),
            gate: Vec::new(),
            up: Vec::new(),
            act: Vec::new(),
            codes: Vec::new(),
            scales: Vec::new(),
            out: Vec::new(),
        }
    }
}

/// One parallel task: rows of one expert and its parts of the workspace.
struct Task<'a, O> {
    expert: usize,
    slots: &'a [usize],
    x: &'a mut [f32],
    gate: &'a mut [O],
    up: &'a mut [O],
    act: &'a mut [f32],
    codes: &'a mut [u8],
    scales: &'a mut [f32],
    out: &'a mut [O],
}

/// Splits `buf` into consecutive parts of `rows[j] · width` elements.
fn parts<'a, T>(mut buf: &'a mut [T], rows: &[usize], width: usize) -> Vec<&'a mut [T]> {
    rows.iter()
        .map(|&r| {
            let (part, rest) = std::mem::take(&mut buf).split_at_mut(r * width);
            buf = rest;
            part
        })
        .collect()
}

impl<O: OutElem> Workspace<O> {
    /// Grows the buffers to hold `rows` rows (never shrinks them).
    fn size(&mut self, rows: usize, ex: &Experts) {
        let (h, i) = (ex.hidden, ex.inter);
        let widest = h.max(i);
        let zero = O::store(0.0);
        let grow = |n: usize| n.max(1);
        if self.x.len() < rows * h {
            self.x.resize(grow(rows * h), 0.0);
            self.out.resize(grow(rows * h), zero);
        }
        if self.gate.len() < rows * i {
            self.gate.resize(grow(rows * i), zero);
            self.up.resize(grow(rows * i), zero);
            self.act.resize(grow(rows * i), 0.0);
        }
        if matches!(ex.gate, Proj::Fp8 { .. }) && self.codes.len() < rows * widest {
            self.codes.resize(rows * widest, 0);
            self.scales
                .resize(rows * widest.div_ceil(FP8_ACT_BLOCK), 0.0);
        }
    }

    /// The chunk's tasks: each expert's rows, a large group split in blocks of rows so that
    /// every thread gets several tasks; largest first.
    fn tasks<'a>(&'a mut self, groups: &'a Groups, ex: &Experts) -> Vec<Task<'a, O>> {
        let (h, i) = (ex.hidden, ex.inter);
        let widest = h.max(i);
        let total = groups.order.len();
        let threads = rayon::current_num_threads().max(1);
        let block = total
            .div_ceil(threads * TASKS_PER_THREAD)
            .max(MIN_TASK_ROWS)
            .next_multiple_of(4);
        let mut spans = Vec::new();
        for (expert, g) in groups.start.windows(2).enumerate() {
            for p0 in (g[0]..g[1]).step_by(block) {
                spans.push((expert, p0, (p0 + block).min(g[1])));
            }
        }
        let rows: Vec<usize> = spans.iter().map(|&(_, p0, p1)| p1 - p0).collect();
        let fp8 = !self.codes.is_empty();
        let kb = widest.div_ceil(FP8_ACT_BLOCK);
        let mut x = parts(&mut self.x, &rows, h).into_iter();
        let mut gate = parts(&mut self.gate, &rows, i).into_iter();
        let mut up = parts(&mut self.up, &rows, i).into_iter();
        let mut act = parts(&mut self.act, &rows, i).into_iter();
        let mut codes = parts(&mut self.codes, &rows, if fp8 { widest } else { 0 }).into_iter();
        let mut scales = parts(&mut self.scales, &rows, if fp8 { kb } else { 0 }).into_iter();
        let mut out = parts(&mut self.out, &rows, h).into_iter();
        let mut tasks: Vec<Task<O>> = spans
            .iter()
            .map(|&(expert, p0, p1)| Task {
                expert,
                slots: &groups.order[p0..p1],
                x: x.next().expect("one part per span"),
                gate: gate.next().expect("one part per span"),
                up: up.next().expect("one part per span"),
                act: act.next().expect("one part per span"),
                codes: codes.next().expect("one part per span"),
                scales: scales.next().expect("one part per span"),
                out: out.next().expect("one part per span"),
            })
            .collect();
        tasks.sort_by_key(|t| std::cmp::Reverse(t.slots.len()));
        tasks
    }
}
