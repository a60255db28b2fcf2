//! Fast mode on aclnn: the exact backend with two ops handed to CANN's operator library.
//!
//! | op | aclnn computes | stays ours (the shared exact kernels) |
//! |---|---|---|
//! | `matmul`, BF16 x, w and out | `aclnnMatmul(x, wᵀ)`, `KEEP_DTYPE`: every dot product and its rounding to BF16 | nothing |
//! | `moe_experts`, Dense BF16 x, weights and out, E ≥ 2 | `aclnnGroupedMatmulV2` for gate, up and down: each projection's dot products and their rounding to BF16 (`A(g)`, `A(u)`, `A(eo)`) | the slot order by expert (host), gathering the rows (`gather_rows`), `A(silu(g)·u)` (`swiglu`), widening `A(eo)` to f32 (`add` of +0), and the combine (`moe_experts_combine`) |
//!
//! Everything else — F32 operands or output, FP8, E = 1 (V2's group list needs two entries),
//! an empty dimension, an expert id ≥ E (so the exact kernels report it) — runs the exact
//! kernels of the wrapped backend, as do all other ops.
use concord_core::{DType, Error, Result};
use concord_kernels::device_backend::DeviceRuntime;
use concord_kernels::dtype_code;
use concord_kernels::host::{KernelArg, KernelDevice, Work};
use concord_ops::{
    Add, Backend, BackendInfo, Buffer, ExpertWeights, GatherRows, KernelMode, Matmul, MoeExperts,
    Op, OpKind, Prepared, Support, Swiglu, TensorArg,
};

use crate::aclnn_result::{Aclnn, IntArray, NnError, Tensor, TensorList, View};
use crate::aclnn_sys::ACL_BF16;
use crate::backend::AscendBackend;

/// The ops fast mode hands to aclnn (for the conformance report's "fast kernels" column).
pub const FAST_OPS: [OpKind; 2] = [OpKind::Matmul, OpKind::MoeExperts];

/// The Ascend backend in fast mode.
pub(crate) struct AscendFast {
    exact: AscendBackend,
    info: BackendInfo,
    nn: Aclnn,
}

fn nn_error(e: NnError) -> Error {
    Error::Backend {
        backend: "ascend".into(),
        message: e.to_string(),
    }
}

fn dims(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&d| d as i64).collect()
}

impl AscendFast {
    /// `exact` with `nn`'s operators for the ops of [`FAST_OPS`].
    pub(crate) fn new(exact: AscendBackend, nn: Aclnn) -> AscendFast {
        let mut info = exact.info().clone();
        info.mode = KernelMode::Fast;
        info.driver = format!(
            "{}, aclnn {} + {}",
            info.driver,
            nn.paths.0.display(),
            nn.paths.1.display()
        );
        AscendFast { exact, info, nn }
    }

    /// The device address of a tensor's first element.
    fn address(&self, t: &TensorArg) -> Result<u64> {
        Ok(self.exact.mem(t.buffer)?.address() + t.offset as u64)
    }

    /// A row-major BF16 `[rows, cols]` view of `t`.
    fn rows<'a>(&'a self, address: u64, rows: usize, cols: usize) -> Result<Tensor<'a>> {
        let d = dims(&[rows, cols]);
        Tensor::new(
            &self.nn,
            &View {
                dims: &d,
                strides: &[d[1], 1],
                storage: &d,
                dtype: ACL_BF16,
                address,
            },
        )
        .map_err(nn_error)
    }

    /// `w [.., n, k]` (row-major, the catalogue's layout) seen as `[.., k, n]`: the transposed
    /// view aclnn multiplies by, with no copy.
    fn transposed<'a>(
        &'a self,
        address: u64,
        lead: Option<usize>,
        n: usize,
        k: usize,
    ) -> Result<Tensor<'a>> {
        let (n, k) = (n as i64, k as i64);
        let (view, strides, storage) = match lead {
            None => (vec![k, n], vec![1, k], vec![n, k]),
            Some(e) => {
                let e = e as i64;
                (vec![e, k, n], vec![n * k, 1, k], vec![e, n, k])
            }
        };
        Tensor::new(
            &self.nn,
            &View {
                dims: &view,
                strides: &strides,
                storage: &storage,
                dtype: ACL_BF16,
                address,
            },
        )
        .map_err(nn_error)
    }

    /// `y = A(x · wᵀ)` with aclnnMatmul.
    fn matmul(&self, ins: &[TensorArg], outs: &[TensorArg]) -> Result<()> {
        let (x, w, y) = (&ins[0], &ins[1], &outs[0]);
        let (m, k, n) = (x.desc.shape[0], x.desc.shape[1], w.desc.shape[0]);
        let xt = self.rows(self.address(x)?, m, k)?;
        let wt = self.transposed(self.address(w)?, None, n, k)?;
        let yt = self.rows(self.address(y)?, m, n)?;
        self.exact.runtime().on_device()?;
        self.nn
            .matmul(self.exact.runtime().stream(), &xt, &wt, &yt)
            .map_err(nn_error)
    }

    /// One grouped projection: `y[rows of g] = x[rows of g] · w[g]ᵀ` for each expert g, with
    /// x `[s, k]`, w `[e, n, k]`, y `[s, n]`, all BF16.
    fn grouped(
        &self,
        x: u64,
        w: u64,
        y: u64,
        ends: &[i64],
        (s, e, n, k): (usize, usize, usize, usize),
    ) -> Result<()> {
        let xl = TensorList::new(&self.nn, vec![self.rows(x, s, k)?]).map_err(nn_error)?;
        let wl = TensorList::new(&self.nn, vec![self.transposed(w, Some(e), n, k)?])
            .map_err(nn_error)?;
        let yl = TensorList::new(&self.nn, vec![self.rows(y, s, n)?]).map_err(nn_error)?;
        let groups = IntArray::new(&self.nn, ends).map_err(nn_error)?;
        self.exact.runtime().on_device()?;
        self.nn
            .grouped_matmul(self.exact.runtime().stream(), &xl, &wl, &groups, &yl)
            .map_err(nn_error)
    }

    /// Runs a catalogue op on the exact kernels.
    fn op(&self, op: &Op, ins: &[TensorArg], outs: &[TensorArg]) -> Result<()> {
        let exact: &dyn Backend = &self.exact;
        exact.run(op, ins, outs)
    }

    /// A scratch buffer of `bytes` (at least one).
    fn scratch(&self, bytes: usize) -> Result<Buffer> {
        self.exact.alloc(bytes.max(1))
    }

    /// Uploads `values` as a U32 vector.
    fn upload_u32(&self, values: &[u32]) -> Result<Buffer> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let buf = self.scratch(bytes.len())?;
        self.exact.write(&buf, 0, &bytes)?;
        Ok(buf)
    }

    /// Routed experts with the three projections on aclnnGroupedMatmulV2; `None` when this
    /// launch must run the exact kernels instead (an id ≥ E, which they report).
    fn moe_experts(
        &self,
        op: &MoeExperts,
        ins: &[TensorArg],
        outs: &[TensorArg],
    ) -> Result<Option<()>> {
        let (x, ids, weights, out) = (&ins[0], &ins[1], &ins[2], &outs[0]);
        let (gate, up, down) = (&ins[3], &ins[4], &ins[5]);
        let (t, h) = (x.desc.shape[0], x.desc.shape[1]);
        let k = ids.desc.shape[1];
        let (e, i) = (gate.desc.shape[0], gate.desc.shape[1]);
        let slots = t * k;
        let (k32, slots32) = match (u32::try_from(k), u32::try_from(slots)) {
            (Ok(k), Ok(s)) => (k, s),
            _ => {
                return Err(Error::unsupported(format!(
                    "moe_experts: {slots} slots exceed 32 bits"
                )))
            }
        };
        let mut raw = vec![0u8; slots * 4];
        self.exact.read(ids.buffer, ids.offset, &mut raw)?;
        let expert: Vec<u32> = raw
            .chunks_exact(4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if expert.iter().any(|&id| id as usize >= e) {
            return Ok(None);
        }
        // Slots sorted by expert, in slot order within one expert; `ends[g]` is where expert
        // g's rows end.
        let mut order: Vec<u32> = (0..slots32).collect();
        order.sort_by_key(|&s| expert[s as usize]);
        let mut ends = vec![0i64; e];
        for &id in &expert {
            ends[id as usize] += 1;
        }
        for g in 1..e {
            ends[g] += ends[g - 1];
        }
        let token_of_row: Vec<u32> = order.iter().map(|&s| s / k32).collect();
        let mut row_of_slot = vec![0u32; slots];
        for (row, &s) in order.iter().enumerate() {
            row_of_slot[s as usize] = row as u32;
        }
        let bf16 = |len: usize| self.scratch(len * 2);
        // x's rows in expert order.
        let token_rows = self.upload_u32(&token_of_row)?;
        let xs = bf16(slots * h)?;
        self.op(
            &Op::GatherRows(GatherRows),
            &[x.clone(), view(&token_rows, DType::U32, &[slots])],
            &[view(&xs, DType::BF16, &[slots, h])],
        )?;
        let (g, u, hid) = (bf16(slots * i)?, bf16(slots * i)?, bf16(slots * i)?);
        let xs_at = self.exact.mem(&xs)?.address();
        let shape_gu = (slots, e, i, h);
        self.grouped(
            xs_at,
            self.address(gate)?,
            self.exact.mem(&g)?.address(),
            &ends,
            shape_gu,
        )?;
        self.grouped(
            xs_at,
            self.address(up)?,
            self.exact.mem(&u)?.address(),
            &ends,
            shape_gu,
        )?;
        self.op(
            &Op::Swiglu(Swiglu { out: DType::BF16 }),
            &[
                view(&g, DType::BF16, &[slots, i]),
                view(&u, DType::BF16, &[slots, i]),
            ],
            &[view(&hid, DType::BF16, &[slots, i])],
        )?;
        let eo_sorted = bf16(slots * h)?;
        self.grouped(
            self.exact.mem(&hid)?.address(),
            self.address(down)?,
            self.exact.mem(&eo_sorted)?.address(),
            &ends,
            (slots, e, h, i),
        )?;
        // Back to slot order, widened exactly to f32 (x + +0.0 is x for every BF16 x but
        // −0.0, which the combine's sum from +0.0 does not tell apart).
        let slot_rows = self.upload_u32(&row_of_slot)?;
        let eo_bf16 = bf16(slots * h)?;
        self.op(
            &Op::GatherRows(GatherRows),
            &[
                view(&eo_sorted, DType::BF16, &[slots, h]),
                view(&slot_rows, DType::U32, &[slots]),
            ],
            &[view(&eo_bf16, DType::BF16, &[slots, h])],
        )?;
        let zeros = bf16(slots * h)?;
        self.exact.write(&zeros, 0, &vec![0u8; slots * h * 2])?;
        let eo = self.scratch(slots * h * 4)?;
        self.op(
            &Op::Add(Add { out: DType::F32 }),
            &[
                view(&eo_bf16, DType::BF16, &[slots, h]),
                view(&zeros, DType::BF16, &[slots, h]),
            ],
            &[view(&eo, DType::F32, &[slots, h])],
        )?;
        self.combine(op, &eo, weights, out, (t, k, h))?;
        Ok(Some(()))
    }

    /// The exact `moe_experts_combine` kernel: `out = A(Σ_k w[t, k] · eo[t·K + k])`.
    fn combine(
        &self,
        op: &MoeExperts,
        eo: &Buffer,
        weights: &TensorArg,
        out: &TensorArg,
        (t, k, h): (usize, usize, usize),
    ) -> Result<()> {
        let dim = |v: usize| {
            u32::try_from(v)
                .map_err(|_| Error::unsupported(format!("dimension {v} exceeds 32 bits")))
        };
        let out_dt = match op.out {
            DType::BF16 => dtype_code::BF16,
            _ => dtype_code::F32,
        };
        let program = self.exact.program(OpKind::MoeExperts)?;
        let args = [
            KernelArg::Mem(self.exact.mem(eo)?),
            KernelArg::Mem(self.exact.mem(weights.buffer)?),
            KernelArg::U64(weights.offset as u64),
            KernelArg::Mem(self.exact.mem(out.buffer)?),
            KernelArg::U64(out.offset as u64),
            KernelArg::U32(out_dt),
            KernelArg::U32(dim(t)?),
            KernelArg::U32(dim(k)?),
            KernelArg::U32(dim(h)?),
        ];
        self.exact
            .runtime()
            .run(&program, "moe_experts_combine", Work::Items(t * h), &args)
    }
}

/// The whole of scratch buffer `b` as a tensor of `dtype` and `shape`.
fn view<'a>(b: &'a Buffer, dtype: DType, shape: &[usize]) -> TensorArg<'a> {
    TensorArg::new(b, dtype, shape.to_vec())
}

/// Whether a launch of `op` goes to aclnn.
fn on_aclnn(op: &Op, ins: &[TensorArg]) -> bool {
    let bf16 = |t: &TensorArg| t.desc.dtype == DType::BF16;
    let nonzero = |t: &TensorArg| t.desc.shape.iter().all(|&d| d > 0);
    match op {
        Op::Matmul(Matmul { out }) => {
            *out == DType::BF16 && ins[..2].iter().all(|t| bf16(t) && nonzero(t))
        }
        Op::MoeExperts(MoeExperts { weights, out }) => {
            *weights == ExpertWeights::Dense
                && *out == DType::BF16
                && [&ins[0], &ins[3], &ins[4], &ins[5]]
                    .into_iter()
                    .all(|t| bf16(t) && nonzero(t))
                && ins[1].desc.shape[1] > 0
                && ins[3].desc.shape[0] >= 2
        }
        _ => false,
    }
}

impl Backend for AscendFast {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn supports(&self, kind: OpKind, dtype: DType) -> Support {
        self.exact.supports(kind, dtype)
    }

    fn alloc(&self, bytes: usize) -> Result<Buffer> {
        self.exact.alloc(bytes)
    }

    fn write(&self, dst: &Buffer, offset: usize, src: &[u8]) -> Result<()> {
        self.exact.write(dst, offset, src)
    }

    fn read(&self, src: &Buffer, offset: usize, dst: &mut [u8]) -> Result<()> {
        self.exact.read(src, offset, dst)
    }

    /// The exact program: what every launch not handed to aclnn runs.
    fn prepare(&self, op: &Op) -> Result<Prepared> {
        self.exact.prepare(op)
    }

    fn launch(
        &self,
        prepared: &Prepared,
        inputs: &[TensorArg],
        outputs: &[TensorArg],
    ) -> Result<()> {
        let op = &prepared.op;
        if !prepared.state.is::<crate::result::Binary>() {
            return Err(Error::invalid(
                "op prepared by another backend passed to ascend (fast mode)",
            ));
        }
        concord_ops::check_launch(op, inputs, outputs)?;
        if on_aclnn(op, inputs) {
            let done = match op {
                Op::Matmul(_) => self.matmul(inputs, outputs).map(Some)?,
                Op::MoeExperts(p) => self.moe_experts(p, inputs, outputs)?,
                _ => None,
            };
            if done.is_some() {
                return Ok(());
            }
        }
        self.exact.launch(prepared, inputs, outputs)
    }

    fn synchronize(&self) -> Result<()> {
        self.exact.synchronize()
    }

    fn memory(&self) -> Option<concord_ops::DeviceMemory> {
        self.exact.memory()
    }
}
