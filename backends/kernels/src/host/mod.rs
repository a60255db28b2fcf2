//! The host side of every op, written once for every device backend: turns checked tensor
//! views into launches of the op's kernels (`backends/kernels/ops/<op>.c`), one file per op.
//!
//! A backend supplies memory and a way to launch one kernel over a 1-D range
//! ([`KernelDevice`]); the kernel names, argument lists, launch sizes and scratch buffers
//! come from here. So OpenCL (run on PoCL in CI), CUDA and HIP launch the same kernels with
//! the same arguments, and the argument lists checked against OpenCL's kernel-argument info
//! in CI are the ones the CUDA and HIP backends pass.
use concord_core::{DType, Error, Result};
use concord_ops::{Buffer, KernelMode, Op, TensorArg};

use crate::dtype_code;

mod add;
mod block_fp8_matmul;
mod embedding;
mod fast_moe;
mod fast_tiles;
mod fp8_act_quant;
mod gather_rows;
mod matmul;
mod mla_decode;
mod mla_prefill;
mod moe_experts;
mod moe_route;
mod penalize;
mod rms_norm;
mod rope;
mod sample;
mod scatter_rows;
mod slice_columns;
mod swiglu;

/// What a device backend provides to launch the shared kernels.
pub trait KernelDevice {
    /// A device allocation: what a `GLOBAL` pointer parameter takes.
    type Mem;
    /// The compiled kernels of one op's program.
    type Program;

    /// The device memory of a buffer this backend allocated, or an error for a foreign one.
    fn mem<'a>(&self, buffer: &'a Buffer) -> Result<&'a Self::Mem>;
    /// The status words (`[code, value, limit, 0]`, u32) kernels write data-dependent errors
    /// into (common/error.h).
    fn status(&self) -> &Self::Mem;
    /// Uninitialised device scratch of `bytes`, alive until the launches enqueued while it is
    /// held have finished (a backend frees it in stream order or after synchronising).
    fn scratch(&self, bytes: usize) -> Result<Self::Mem>;
    /// Launches kernel `name` of `program` over `work` with `args`, in order after earlier
    /// launches.
    fn run(
        &self,
        program: &Self::Program,
        name: &str,
        work: Work,
        args: &[KernelArg<'_, Self::Mem>],
    ) -> Result<()>;
}

/// The shape of one 1-D launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Independent work-items: the backend picks the group size and rounds the range up to
    /// whole groups; the kernel guards its index (every exact kernel).
    Items(usize),
    /// Exactly `groups` work-groups of exactly `size` items: kernels that share local memory
    /// and barriers (the fast tiles, common/tile_gemm.h).
    Groups {
        /// Work-groups.
        groups: usize,
        /// Items per group.
        size: usize,
    },
}

impl Work {
    /// `(groups, items per group)`, with `default_size` items per group for
    /// [`Work::Items`].
    pub fn grid(self, default_size: usize) -> (usize, usize) {
        match self {
            Work::Items(n) => (n.div_ceil(default_size.max(1)), default_size.max(1)),
            Work::Groups { groups, size } => (groups, size),
        }
    }
}

/// One kernel argument.
pub enum KernelArg<'a, M> {
    /// A `GLOBAL` pointer parameter: the start of a device allocation.
    Mem(&'a M),
    /// `u32`.
    U32(u32),
    /// `u64`.
    U64(u64),
    /// `float`.
    F32(f32),
}

impl<M> Clone for KernelArg<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for KernelArg<'_, M> {}

/// Launches `op` on views already checked against `op.infer` (`concord_ops::check_launch`),
/// with `program` built for `mode` (`concord_kernels::Program::of(op.kind(), mode)`: a fast
/// program holds the exact kernels too, which the fast host code falls back to).
pub fn launch<D: KernelDevice>(
    device: &D,
    program: &D::Program,
    op: &Op,
    mode: KernelMode,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    let cx = Cx { device, program };
    let fast = mode == KernelMode::Fast;
    match op {
        Op::Embedding(_) => embedding::launch(&cx, ins, outs),
        Op::RmsNorm(p) => rms_norm::launch(&cx, p, ins, outs),
        Op::Matmul(_) if fast => fast_tiles::matmul(&cx, ins, outs),
        Op::Matmul(_) => matmul::launch(&cx, ins, outs),
        Op::Fp8ActQuant(p) => fp8_act_quant::launch(&cx, p, ins, outs),
        Op::BlockFp8Matmul(p) if fast => fast_tiles::block_fp8_matmul(&cx, p, ins, outs),
        Op::BlockFp8Matmul(p) => block_fp8_matmul::launch(&cx, p, ins, outs),
        Op::Rope(p) => rope::launch(&cx, p, ins, outs),
        Op::MlaPrefill(p) => mla_prefill::launch(&cx, p, ins, outs),
        Op::MlaDecode(p) => mla_decode::launch(&cx, p, ins, outs),
        Op::MoeRoute(p) => moe_route::launch(&cx, p, ins, outs),
        Op::MoeExperts(p) if fast => fast_moe::moe_experts(&cx, p, ins, outs),
        Op::MoeExperts(p) => moe_experts::launch(&cx, p, ins, outs),
        Op::Swiglu(_) => swiglu::launch(&cx, ins, outs),
        Op::Add(_) => add::launch(&cx, ins, outs),
        Op::SliceColumns(p) => slice_columns::launch(&cx, p, ins, outs),
        Op::ScatterRows(_) => scatter_rows::launch(&cx, ins, outs),
        Op::GatherRows(_) => gather_rows::launch(&cx, ins, outs),
        Op::Penalize(p) => penalize::launch(&cx, p, ins, outs),
        Op::Sample(p) => sample::launch(&cx, p, ins, outs),
    }
}

/// What an op's launch code needs: the device and the op's compiled kernels.
pub(crate) struct Cx<'a, D: KernelDevice> {
    device: &'a D,
    program: &'a D::Program,
}

impl<D: KernelDevice> Cx<'_, D> {
    /// Launches kernel `name` over `items` independent work-items.
    fn run(&self, name: &str, items: usize, args: &Args<D::Mem>) -> Result<()> {
        self.device
            .run(self.program, name, Work::Items(items), &args.0)
    }

    /// Launches kernel `name` over `groups` work-groups of `size` items.
    fn run_groups(
        &self,
        name: &str,
        groups: usize,
        size: usize,
        args: &Args<D::Mem>,
    ) -> Result<()> {
        self.device
            .run(self.program, name, Work::Groups { groups, size }, &args.0)
    }

    /// Uninitialised device scratch of `bytes`.
    fn scratch(&self, bytes: usize) -> Result<D::Mem> {
        self.device.scratch(bytes)
    }
}

/// A kernel argument list under construction.
pub(crate) struct Args<'a, M>(Vec<KernelArg<'a, M>>);

impl<'a, M> Args<'a, M> {
    fn new() -> Self {
        Args(Vec::with_capacity(24))
    }
    /// A tensor: its buffer and its byte offset (`IN_TENSOR`/`OUT_TENSOR`).
    fn tensor<D: KernelDevice<Mem = M>>(
        mut self,
        cx: &Cx<'a, D>,
        t: &TensorArg<'a>,
    ) -> Result<Self> {
        self.0.push(KernelArg::Mem(cx.device.mem(t.buffer)?));
        self.0.push(KernelArg::U64(t.offset as u64));
        Ok(self)
    }
    /// A tensor and its activation dtype code.
    fn act<D: KernelDevice<Mem = M>>(self, cx: &Cx<'a, D>, t: &TensorArg<'a>) -> Result<Self> {
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
    fn mem(mut self, m: &'a M) -> Self {
        self.0.push(KernelArg::Mem(m));
        self
    }
    /// The backend's status words for data-dependent errors.
    fn status<D: KernelDevice<Mem = M>>(self, cx: &Cx<'a, D>) -> Self {
        self.mem(cx.device.status())
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.push(KernelArg::U32(v));
        self
    }
    fn u64(mut self, v: usize) -> Self {
        self.0.push(KernelArg::U64(v as u64));
        self
    }
    fn f32(mut self, v: f32) -> Self {
        self.0.push(KernelArg::F32(v));
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
