//! The collective interface every transport implements.

use concord_core::{Error, Result};

/// Collectives over a fixed group of `size()` ranks. Every rank calls the same collectives in
/// the same order with consistent sizes; a rank that does not (or dies) makes the others fail
/// with an error after the communicator's timeout, never hang forever.
///
/// Buffers are host memory: a device backend's tensors are downloaded before and uploaded after;
/// a device-resident transport (NCCL, RCCL) stages them through device buffers.
pub trait Communicator: Send + Sync {
    /// This rank, `0..size()`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// What carries the bytes, for logs and errors (`"single rank"`, `"mpi (Open MPI)"`, …).
    fn describe(&self) -> String;

    /// Every rank contributes `send` (`counts[rank()]` bytes); `recv` (Σ counts bytes) receives
    /// every rank's contribution, concatenated in rank order.
    fn all_gather_v(&self, send: &[u8], counts: &[usize], recv: &mut [u8]) -> Result<()>;

    /// Personalised exchange: `send` holds `send_counts[r]` bytes for each rank `r`, in rank
    /// order; `recv` receives `recv_counts[r]` bytes from each rank `r`, in rank order.
    fn all_to_all_v(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    ) -> Result<()>;

    /// `buf` on every rank becomes `buf` of rank `root`.
    fn broadcast(&self, buf: &mut [u8], root: usize) -> Result<()>;

    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;

    /// Element-wise sum across ranks, in rank order: `((x₀ + x₁) + x₂) + …` in f32, the same
    /// bits on every rank and for every transport (an all-gather followed by a local ordered
    /// sum — a transport's own reduction would pick its own order).
    fn all_reduce_sum_f32(&self, data: &mut [f32]) -> Result<()> {
        let size = self.size();
        let bytes = std::mem::size_of_val(data);
        let mut gathered = vec![0u8; bytes * size];
        let send: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.all_gather_v(&send, &vec![bytes; size], &mut gathered)?;
        for (i, out) in data.iter_mut().enumerate() {
            let mut acc = f32_at(&gathered, i);
            for r in 1..size {
                acc += f32_at(&gathered, r * (bytes / 4) + i);
            }
            *out = acc;
        }
        Ok(())
    }
}

fn f32_at(bytes: &[u8], index: usize) -> f32 {
    let b = &bytes[index * 4..index * 4 + 4];
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Offsets of each rank's part in a concatenation of `counts`, checking that the total fits
/// `available` bytes (`what` names the buffer in the error).
pub fn exclusive_prefix(counts: &[usize], available: usize, what: &str) -> Result<Vec<usize>> {
    let mut offsets = Vec::with_capacity(counts.len());
    let mut total = 0usize;
    for &c in counts {
        offsets.push(total);
        total = total
            .checked_add(c)
            .ok_or_else(|| Error::invalid(format!("{what}: byte counts overflow")))?;
    }
    if total != available {
        return Err(Error::invalid(format!(
            "{what}: counts add up to {total} bytes, the buffer has {available}"
        )));
    }
    Ok(offsets)
}
