//! RoPE cos/sin tables, computed once on the host (docs/numerics.md §RoPE tables) so that no
//! device math library takes part in the rotation.

use concord_core::Result;
use concord_loader::alloc::{checked_size, try_vec_with_capacity};
use concord_loader::ModelConfig;

/// cos and sin of `f32(p) · inv_freq[i]`, times the YaRN magnitude factor, for p < positions.
pub struct RopeTable {
    /// Row-major [positions, dim/2].
    pub cos: Vec<f32>,
    /// Row-major [positions, dim/2].
    pub sin: Vec<f32>,
    /// Number of rows.
    pub positions: usize,
    /// Pairs per row (qk_rope_head_dim / 2).
    pub pairs: usize,
}

impl RopeTable {
    /// Tables for positions `0..positions` of `cfg`'s rotary embedding; an impossible size is
    /// an error naming the table, not an abort.
    pub fn new(cfg: &ModelConfig, positions: usize) -> Result<Self> {
        let inv_freq = cfg.rope_inv_freq();
        let factor = cfg.rope_attention_factor();
        let pairs = inv_freq.len();
        let len = checked_size(positions, pairs, "RoPE table [positions, pairs]")?;
        let mut cos = try_vec_with_capacity(len, "RoPE cos table")?;
        let mut sin = try_vec_with_capacity(len, "RoPE sin table")?;
        for p in 0..positions {
            for &f in &inv_freq {
                // The references form the angle as one f32 product; cos/sin themselves are
                // taken in f64 and rounded once, which is what a correctly rounded f32 cos gives.
                let angle = (p as f32 * f) as f64;
                cos.push((angle.cos() as f32) * factor);
                sin.push((angle.sin() as f32) * factor);
            }
        }
        Ok(RopeTable {
            cos,
            sin,
            positions,
            pairs,
        })
    }
}
