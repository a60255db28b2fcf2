//! Fast mode: the matmuls as work-group tiles on tensor cores where the device has them
//! (`ops/fast/`, common/tile_gemm.h). The tile shape is fixed — never chosen from M — so a
//! row's result is the same whatever else is in the batch. Operands the tiles do not take
//! (F32) run the exact kernel, which the fast program also holds.
use concord_core::{DType, Result};
use concord_ops::{BlockFp8Matmul, TensorArg, FP8_ACT_BLOCK};

use super::{block_fp8_matmul as exact_fp8, matmul as exact, Cx, KernelDevice};

/// Rows of y one work-group computes (`TILE_M`).
pub const TILE_M: usize = 16;
/// Columns of y one work-group computes (`TILE_N`).
pub const TILE_N: usize = 64;
/// Work-items per group (`TILE_GROUP`: four warps).
pub const TILE_GROUP: usize = 128;

/// Work-groups covering an `m` x `n` output.
fn groups(m: usize, n: usize) -> usize {
    m.div_ceil(TILE_M) * n.div_ceil(TILE_N)
}

/// `y = x . w^T`: BF16 x and w on the tiles, anything else exactly.
pub(super) fn matmul<D: KernelDevice>(
    cx: &Cx<D>,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    if ins[0].desc.dtype != DType::BF16 || ins[1].desc.dtype != DType::BF16 {
        return exact::launch(cx, ins, outs);
    }
    let (args, m, n) = exact::args(cx, ins, outs)?;
    cx.run_groups("matmul_fast_bf16", groups(m, n), TILE_GROUP, &args)
}

/// Block-scaled FP8 GEMM: every 128-column block's products on the tiles, scaled per block
/// in block order as the exact kernel scales.
pub(super) fn block_fp8_matmul<D: KernelDevice>(
    cx: &Cx<D>,
    op: &BlockFp8Matmul,
    ins: &[TensorArg],
    outs: &[TensorArg],
) -> Result<()> {
    debug_assert_eq!(FP8_ACT_BLOCK, 128, "TILE_K is one activation block");
    if ins[0].desc.dtype != DType::F8E4M3 {
        return exact_fp8::launch(cx, op, ins, outs);
    }
    let (args, m, n) = exact_fp8::args(cx, op, ins, outs)?;
    cx.run_groups("block_fp8_matmul_fast", groups(m, n), TILE_GROUP, &args)
}
