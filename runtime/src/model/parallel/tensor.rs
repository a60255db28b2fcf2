//! Tensor parallelism: weights split on their output rows, outputs gathered as columns.

use concord_core::{Error, Result};
use concord_ops::TensorDesc;

use super::Shard;
use crate::exec::DeviceTensor;
use crate::model::Model;

/// Part `index` of `parts` equal parts of a weight's output rows (for q_b/kv_b_proj, whose rows
/// are head after head, equal parts are whole heads once the head count divides).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowSplit {
    pub index: usize,
    pub parts: usize,
}

impl RowSplit {
    /// First row and row count of this part of `rows` rows; `name` is the tensor, for errors.
    pub fn range(&self, rows: usize, name: &str) -> Result<(usize, usize)> {
        if !rows.is_multiple_of(self.parts) {
            return Err(Error::model(format!(
                "tensor-parallel {} does not divide the {rows} rows of {name}",
                self.parts
            )));
        }
        let len = rows / self.parts;
        Ok((self.index * len, len))
    }

    /// The FP8 block scales that go with weight rows `start..start+len` of a weight stored in
    /// blocks of `block_rows` rows: `(local block height, the global scale row of each local
    /// block)`, so that every kept row keeps the multiplier it had — the same bits as the
    /// unsplit weight, never a re-quantization. A part that starts on a block boundary keeps
    /// the block height; one that starts inside a block gets the finer height
    /// `h = gcd(start, block_rows)`: `h` divides both, so each local block of `h` rows lies
    /// inside one global block (the block-FP8 matmul takes any block height).
    pub fn scale_rows(&self, start: usize, len: usize, block_rows: usize) -> (usize, Vec<usize>) {
        let height = if start.is_multiple_of(block_rows) {
            block_rows
        } else {
            gcd(start, block_rows)
        };
        let rows = (0..len.div_ceil(height))
            .map(|i| (start + i * height) / block_rows)
            .collect();
        (height, rows)
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Rows `start..start+len` of a row-major matrix of `cols` elements per row.
pub(crate) fn slice_rows<T: Clone>(values: &[T], cols: usize, start: usize, len: usize) -> Vec<T> {
    values[start * cols..(start + len) * cols].to_vec()
}

impl Shard {
    /// This rank's split of tensor-parallel weights (`None` without tensor parallelism).
    pub fn tensor_split(&self) -> Option<RowSplit> {
        (self.tensor > 1).then_some(RowSplit {
            index: self.tp_index,
            parts: self.tensor,
        })
    }

    /// Ranks of this rank's tensor group (same expert shard), in tensor-index order.
    fn tensor_group(&self) -> std::ops::Range<usize> {
        let first = self.ep_index * self.tensor;
        first..first + self.tensor
    }
}

impl Model {
    /// Heads of attention this rank computes.
    pub(crate) fn local_heads(&self) -> usize {
        let tp = self.parallel.as_ref().map_or(1, |s| s.tensor);
        self.cfg.num_attention_heads / tp
    }

    /// `local` [T, C] (this rank's output columns of a tensor-parallel matmul) → [T, C·TP],
    /// the columns of tensor ranks 0, 1, … side by side: the bytes each rank computed whole,
    /// exchanged within the tensor group (nothing is summed). Identity without TP.
    pub(crate) fn gather_columns(&self, local: DeviceTensor) -> Result<DeviceTensor> {
        let Some(shard) = self.parallel.as_ref().filter(|s| s.tensor > 1) else {
            return Ok(local);
        };
        let [t, c] = local.desc.shape[..] else {
            return Err(Error::model(format!(
                "tensor-parallel gather: expected a matrix, got {:?}",
                local.desc.shape
            )));
        };
        let piece = local.desc.bytes();
        let mut mine = vec![0u8; piece];
        self.exec.backend().read(&local.buffer, 0, &mut mine)?;
        let group = shard.tensor_group();
        let size = shard.comm.size();
        let counts: Vec<usize> = (0..size)
            .map(|r| if group.contains(&r) { piece } else { 0 })
            .collect();
        let send = mine.repeat(shard.tensor);
        let mut recv = vec![0u8; piece * shard.tensor];
        shard
            .comm
            .all_to_all_v(&send, &counts, &mut recv, &counts)?;
        let row = piece / t.max(1);
        let mut full = vec![0u8; recv.len()];
        for (part, bytes) in recv.chunks_exact(piece.max(1)).enumerate() {
            for r in 0..t {
                let dst = r * row * shard.tensor + part * row;
                full[dst..dst + row].copy_from_slice(&bytes[r * row..(r + 1) * row]);
            }
        }
        self.exec.upload(
            TensorDesc::new(local.desc.dtype, [t, c * shard.tensor]),
            &full,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::RowSplit;

    fn split(index: usize, parts: usize) -> RowSplit {
        RowSplit { index, parts }
    }

    #[test]
    fn row_ranges_are_equal_contiguous_parts() {
        assert_eq!(split(0, 2).range(320, "w").unwrap(), (0, 160));
        assert_eq!(split(1, 2).range(320, "w").unwrap(), (160, 160));
        assert_eq!(split(3, 4).range(8, "w").unwrap(), (6, 2));
        let e = split(1, 2).range(3, "q_b_proj.weight").unwrap_err();
        assert!(e.to_string().contains("q_b_proj.weight"), "{e}");
    }

    #[test]
    fn scale_rows_give_every_kept_row_its_global_block() {
        // 256 rows in 128-row blocks, two parts: one block each.
        assert_eq!(split(1, 2).scale_rows(128, 128, 128), (128, vec![1]));
        // 512 rows, two parts of 256: blocks 2 and 3 for the second.
        assert_eq!(split(1, 2).scale_rows(256, 256, 128), (128, vec![2, 3]));
        // 128 rows, two parts of 64: the second lies inside block 0 (height gcd(64,128) = 64).
        assert_eq!(split(1, 2).scale_rows(64, 64, 128), (64, vec![0]));
        // 320 rows, two parts of 160: the second (rows 160..320) starts inside block 1; local
        // blocks of gcd(160, 128) = 32 rows: 160..192, 192..224, 224..256 in block 1, then
        // 256..288, 288..320 in block 2 — worked out by hand.
        assert_eq!(
            split(1, 2).scale_rows(160, 160, 128),
            (32, vec![1, 1, 1, 2, 2])
        );
        // The demo's q_b_proj: 192 rows, second half 96..192 → height 32: rows 96..128 in
        // block 0, 128..192 in block 1.
        assert_eq!(split(1, 2).scale_rows(96, 96, 128), (32, vec![0, 1, 1]));
    }
}
