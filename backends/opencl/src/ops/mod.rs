//! Host side of every op: turns checked tensor views into launches of the op's kernels
//! (`backends/kernels/ops/<op>.c`), one file per op.
use concord_core::{DType, Error, Result};
use concord_kernels::dtype_code;
use concord_ops::{Op, TensorArg};

use crate::backend::{Compiled, OpenClBackend};
use crate::sys::{Arg, Mem};

mod add;
mod block_fp8_matmul;
mod embedding;
mod fp8_act_quant;
mod matmul;
mod mla_decode;
mod mla_prefill;
mod moe_experts;
mod moe_route;
mod rms_norm;
mod rope;
mod sample;
mod scatter_rows;
mod slice_columns;
mod swiglu;

/// Launches `op` on views already checked against `op.infer`.
pub(crate) fn launch(
    backend: &OpenClBackend,
    compiled: &Compiled,
    op: &Op,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let cx = Cx { backend, compiled };
    match op {
        Op::Embedding(_) => embedding::launch(&cx, ins, outs),
        Op::RmsNorm(p) => rms_norm::launch(&cx, p, ins, outs),
        Op::Matmul(_) => matmul::launch(&cx, ins, outs),
        Op::Fp8ActQuant(_) => fp8_act_quant::launch(&cx, ins, outs),
        Op::BlockFp8Matmul(p) => block_fp8_matmul::launch(&cx, p, ins, outs),
        Op::Rope(p) => rope::launch(&cx, p, ins, outs),
        Op::MlaPrefill(p) => mla_prefill::launch(&cx, p, ins, outs),
        Op::MlaDecode(p) => mla_decode::launch(&cx, p, ins, outs),
        Op::MoeRoute(p) => moe_route::launch(&cx, p, ins, outs),
        Op::MoeExperts(p) => moe_experts::launch(&cx, p, ins, outs),
        Op::Swiglu(_) => swiglu::launch(&cx, ins, outs),
        Op::Add(_) => add::launch(&cx, ins, outs),
        Op::SliceColumns(p) => slice_columns::launch(&cx, p, ins, outs),
        Op::ScatterRows(_) => scatter_rows::launch(&cx, ins, outs),
        Op::Sample(p) => sample::launch(&cx, p, ins, outs),
    }
}

/// What an op's launch code needs: the backend and the op's compiled kernels.
pub(crate) struct Cx<'a> {
    backend: &'a OpenClBackend,
    compiled: &'a Compiled,
}

impl Cx<'_> {
    /// Enqueues kernel `name` over `items` work-items.
    fn run(&self, name: &str, items: usize, args: &Args) -> Result<()> {
        let k = self.compiled.kernel(name)?;
        self.backend.queue().launch(k, items, &args.0)
    }

    /// Uninitialised device scratch of `bytes` (released when dropped; OpenCL keeps it alive
    /// until the kernels using it have finished).
    fn scratch(&self, bytes: usize) -> Result<Mem> {
        self.backend.queue().alloc(bytes)
    }
}

/// A kernel argument list under construction.
pub(crate) struct Args<'a>(Vec<Arg<'a>>);

impl<'a> Args<'a> {
    fn new() -> Self {
        Args(Vec::with_capacity(24))
    }
    /// A tensor: its buffer and its byte offset (`IN_TENSOR`/`OUT_TENSOR`).
    fn tensor(mut self, cx: &Cx<'a>, t: &TensorArg<'a>) -> Result<Self> {
        self.0.push(Arg::Mem(cx.backend.mem(t.buffer)?));
        self.0.push(Arg::U64(t.offset as u64));
        Ok(self)
    }
    /// A tensor and its activation dtype code.
    fn act(self, cx: &Cx<'a>, t: &TensorArg<'a>) -> Result<Self> {
        let dt = t.desc.dtype;
        self.tensor(cx, t)?.dtype(dt)
    }
    /// An activation dtype code.
    fn dtype(self, d: DType) -> Result<Self> {
        let code = match d {
            DType::F32 => dtype_code::F32,
            DType::BF16 => dtype_code::BF16,
            other => {
                return Err(Error::invalid(format!(
                    "{other} is not an activation dtype"
                )))
            }
        };
        Ok(self.u32(code))
    }
    /// A whole device buffer (scratch, the status words) as a `GLOBAL T *` parameter.
    fn mem(mut self, m: &'a Mem) -> Self {
        self.0.push(Arg::Mem(m));
        self
    }
    /// The backend's status words for data-dependent errors.
    fn status(self, cx: &Cx<'a>) -> Self {
        self.mem(cx.backend.status())
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.push(Arg::U32(v));
        self
    }
    fn u64(mut self, v: usize) -> Self {
        self.0.push(Arg::U64(v as u64));
        self
    }
    fn f32(mut self, v: f32) -> Self {
        self.0.push(Arg::F32(v));
        self
    }
    /// A dimension passed as `u32`; fails if it does not fit.
    fn dim(self, v: usize) -> Result<Self> {
        Ok(self.u32(dim(v)?))
    }
}

/// A size as the kernels' `u32`, or an error.
fn dim(v: usize) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| Error::unsupported(format!("dimension {v} exceeds the kernels' 32-bit sizes")))
}

/// `len` elements of f32 scratch in bytes.
fn f32s(len: usize) -> usize {
    len * 4
}
