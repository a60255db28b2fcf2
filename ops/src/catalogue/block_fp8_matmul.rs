use concord_core::{DType, Error, Result};
use serde::Serialize;

use super::check::{activation_out, arity, ceil_div};
use super::fp8_act_quant::FP8_ACT_BLOCK;
use crate::op::OpContract;
use crate::TensorDesc;

/// `y[m,n] = A(Σ_kb (blocksum_kb · xs[m,kb]) · ws[n/bn, kb])` — xq F8 [M,K], xs F32 [M,⌈K/128⌉],
/// w F8_E4M3 [N,K], ws F32 [⌈N/bn⌉,⌈K/bk⌉] → [M,N]; bk must be 128 (one scale pair per block).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockFp8Matmul {
    /// Weight block shape [rows, columns] (`weight_block_size`), columns must be 128.
    pub block: [usize; 2],
    /// Output (activation) dtype.
    pub out: DType,
}

impl OpContract for BlockFp8Matmul {
    fn infer(&self, inputs: &[TensorDesc]) -> Result<Vec<TensorDesc>> {
        let [xq, xs, w, ws] = arity("block_fp8_matmul", inputs, 4)? else {
            unreachable!()
        };
        activation_out("block_fp8_matmul", self.out)?;
        if self.block[1] != FP8_ACT_BLOCK || self.block[0] == 0 {
            return Err(Error::unsupported(format!(
                "block_fp8_matmul: weight block {:?} (the column block must be {FP8_ACT_BLOCK})",
                self.block
            )));
        }
        xq.expect_rank(2, "block_fp8_matmul xq")?
            .expect_dtype(&[DType::F8E4M3], "block_fp8_matmul xq")?;
        let (m, k) = (xq.shape[0], xq.shape[1]);
        let kb = ceil_div(k, FP8_ACT_BLOCK);
        xs.expect_dtype(&[DType::F32], "block_fp8_matmul xs")?;
        if xs.shape != [m, kb] {
            return Err(Error::invalid(format!(
                "block_fp8_matmul xs: expected [{m}, {kb}], got {:?}",
                xs.shape
            )));
        }
        w.expect_rank(2, "block_fp8_matmul w")?
            .expect_dtype(&[DType::F8E4M3], "block_fp8_matmul w")?
            .expect_dim(1, k, "block_fp8_matmul w (in_features)")?;
        let n = w.shape[0];
        ws.expect_dtype(&[DType::F32], "block_fp8_matmul ws")?;
        let want = [ceil_div(n, self.block[0]), ceil_div(k, self.block[1])];
        if ws.shape != want {
            return Err(Error::invalid(format!(
                "block_fp8_matmul ws: expected {want:?}, got {:?}",
                ws.shape
            )));
        }
        Ok(vec![TensorDesc::new(self.out, [m, n])])
    }
}
