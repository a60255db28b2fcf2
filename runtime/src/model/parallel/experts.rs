//! Expert parallelism: each (token, slot) expert output computed on the rank holding the
//! expert, every output gathered to every rank, then the contract's combine in slot order.

use concord_core::convert::{bf16_to_f32, f32_to_bf16};
use concord_core::{DType, Error, Result};
use concord_ops::{GatherRows, TensorArg, TensorDesc};

use super::Shard;
use crate::exec::DeviceTensor;
use crate::model::weights::ExpertStacks;
use crate::model::Model;

impl Model {
    /// The routed experts' output `A(Σ_k w[t,k]·eo[t,k])` for `x` [T, H] routed to `ids` /
    /// `weights` [T, K], with this rank holding only its shard of the experts.
    ///
    /// Each slot's `eo[t,k]` is `MoeExperts` with K = 1 and weight 1.0 on the gathered row:
    /// the kernel's combine `+0.0 + 1.0·eo` returns `eo` itself (the product is exact, and
    /// `+0.0 + v = v` for every v but −0.0, which becomes +0.0 — a value the combine below
    /// cannot tell apart, since its running sum starts at +0.0 and never becomes −0.0).
    pub(crate) fn routed_experts_sharded(
        &self,
        shard: &Shard,
        x: &TensorArg,
        ids: &DeviceTensor,
        weights: &DeviceTensor,
        stacks: &ExpertStacks,
    ) -> Result<DeviceTensor> {
        let act = self.activation();
        let (t, h) = (x.desc.shape[0], x.desc.shape[1]);
        let experts = self.cfg.n_routed_experts;
        let ids_h = self.exec.read_u32(&ids.arg())?;
        let w_h = self.exec.read_f32(&weights.arg())?;
        let k = ids.desc.shape[1];
        let (first_local, local_count) = shard.local_experts(experts);

        // Which rank computes each (token, slot) pair, in pair order (the same on every rank:
        // routing is replicated).
        let size = shard.comm.size();
        let mut owned: Vec<Vec<usize>> = vec![Vec::new(); size];
        for (pair, &e) in ids_h.iter().enumerate() {
            let e = e as usize;
            if e >= experts {
                return Err(Error::model(format!(
                    "router chose expert {e} of {experts} (token {}, slot {})",
                    pair / k,
                    pair % k
                )));
            }
            owned[shard.expert_owner(e, pair % k, experts)].push(pair);
        }

        let mine = &owned[shard.rank()];
        let row_bytes = h * act.size_in_bytes();
        let send = if mine.is_empty() {
            Vec::new()
        } else {
            let rows: Vec<u32> = mine.iter().map(|&p| (p / k) as u32).collect();
            let local_ids: Vec<u32> = mine
                .iter()
                .map(|&p| (ids_h[p] as usize - first_local) as u32)
                .collect();
            debug_assert!(local_ids.iter().all(|&e| (e as usize) < local_count));
            let rows = self.exec.upload_u32(&rows)?;
            let xg = self.exec.apply1(GatherRows, &[x.clone(), rows.arg()])?;
            let n = mine.len();
            let id_bytes: Vec<u8> = local_ids.iter().flat_map(|v| v.to_le_bytes()).collect();
            let ids_t = self
                .exec
                .upload(TensorDesc::new(DType::U32, [n, 1]), &id_bytes)?;
            let ones = self.exec.upload_f32(&[n, 1], &vec![1.0; n])?;
            let eo =
                self.routed_experts(&self.exec, &xg.arg(), &ids_t.arg(), &ones.arg(), stacks)?;
            let mut bytes = vec![0u8; eo.desc.bytes()];
            self.exec.backend().read(&eo.buffer, 0, &mut bytes)?;
            bytes
        };
        let counts: Vec<usize> = owned.iter().map(|o| o.len() * row_bytes).collect();
        let mut gathered = vec![0u8; counts.iter().sum()];
        shard.comm.all_gather_v(&send, &counts, &mut gathered)?;

        // Where each pair's output row sits in the gathered bytes.
        let mut at = vec![0usize; ids_h.len()];
        let mut offset = 0;
        for pairs in &owned {
            for &p in pairs {
                at[p] = offset;
                offset += row_bytes;
            }
        }
        let out = combine(&gathered, &at, &w_h, t, k, h, act)?;
        self.exec.upload(TensorDesc::new(act, [t, h]), &out)
    }
}

/// The contract's MoE combine (docs/numerics.md "MoE combine") on the host: per token and
/// column, `y = +0.0; y = y + w_k·eo_k` for k in slot order (f32, each product rounded), then
/// `A(y)` — the bytes of the [T, H] result in `act`. `eo_k` of pair `t·K + k` is the row at
/// byte offset `at[t·K + k]` of `eo`.
fn combine(
    eo: &[u8],
    at: &[usize],
    w: &[f32],
    t: usize,
    k: usize,
    h: usize,
    act: DType,
) -> Result<Vec<u8>> {
    let value = |offset: usize, c: usize| -> f32 {
        match act {
            DType::BF16 => {
                let i = offset + 2 * c;
                bf16_to_f32(u16::from_le_bytes([eo[i], eo[i + 1]]))
            }
            _ => {
                let i = offset + 4 * c;
                f32::from_le_bytes([eo[i], eo[i + 1], eo[i + 2], eo[i + 3]])
            }
        }
    };
    let mut out = Vec::with_capacity(t * h * act.size_in_bytes());
    for token in 0..t {
        for c in 0..h {
            let mut y = 0.0f32;
            for slot in 0..k {
                let pair = token * k + slot;
                let product = w[pair] * value(at[pair], c);
                y += product;
            }
            match act {
                DType::BF16 => out.extend_from_slice(&f32_to_bf16(y).to_le_bytes()),
                DType::F32 => out.extend_from_slice(&y.to_le_bytes()),
                other => {
                    return Err(Error::unsupported(format!(
                        "expert-parallel combine into {other:?} activations"
                    )))
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use concord_core::convert::{bf16_to_f32, f32_to_bf16};
    use concord_core::DType;

    use super::combine;

    fn bf16_bytes(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&v| f32_to_bf16(v).to_le_bytes())
            .collect()
    }

    #[test]
    fn combine_sums_slots_in_order_from_positive_zero_and_rounds_once() {
        // One token, three slots of one column: eo = 1, 2^26, −2^26 (exact in BF16), weights 1.
        // In slot order: 0 + 1 = 1; 1 + 2^26 rounds to 2^26 in f32 (24-bit significand);
        // 2^26 − 2^26 = +0. Any other order gives 1 (e.g. reversed: −2^26 + 2^26 = 0, + 1).
        let eo = bf16_bytes(&[1.0, 67_108_864.0, -67_108_864.0]);
        let at = [0, 2, 4];
        let out = combine(&eo, &at, &[1.0, 1.0, 1.0], 1, 3, 1, DType::BF16).unwrap();
        let y = bf16_to_f32(u16::from_le_bytes([out[0], out[1]]));
        assert_eq!(y.to_bits(), 0.0f32.to_bits());

        // Slots may sit anywhere in the gathered bytes: `at` says where, per (token, slot).
        let eo = bf16_bytes(&[-67_108_864.0, 1.0, 67_108_864.0]);
        let out = combine(&eo, &[2, 4, 0], &[1.0, 1.0, 1.0], 1, 3, 1, DType::BF16).unwrap();
        assert_eq!(bf16_to_f32(u16::from_le_bytes([out[0], out[1]])), 0.0);

        // Products are rounded to f32 before the add, and the sum to the activation once:
        // f32: 0.1·3 = 0.3000000119… (f32(0.1)·3 rounded), + 0 → that value.
        let eo: Vec<u8> = 3.0f32.to_le_bytes().to_vec();
        let out = combine(&eo, &[0], &[0.1], 1, 1, 1, DType::F32).unwrap();
        let y = f32::from_le_bytes([out[0], out[1], out[2], out[3]]);
        assert_eq!(y, 0.1f32 * 3.0f32);
        // −0.0 outputs give +0.0 (the sum starts at +0.0), as on one rank.
        let eo: Vec<u8> = (-0.0f32).to_le_bytes().to_vec();
        let out = combine(&eo, &[0], &[0.5], 1, 1, 1, DType::F32).unwrap();
        assert_eq!(
            f32::from_le_bytes([out[0], out[1], out[2], out[3]]).to_bits(),
            0
        );
    }
}
