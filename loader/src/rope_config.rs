//! RoPE / YaRN configuration: the `rope_scaling` block, its parsing, and the [`ModelConfig`]
//! helpers that reproduce transformers 5.x `_compute_yarn_parameters` and `yarn_apply_mscale`.

use concord_core::Result;
use serde_json::{Map, Value};

use crate::config::ModelConfig;
use crate::json_fields::{Field, Obj};

/// Kind of RoPE scaling (`rope_scaling.type` / `rope_scaling.rope_type`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RopeScalingKind {
    /// YaRN (`yarn`; `deepseek_yarn` is accepted as an alias).
    Yarn,
    /// Linear position interpolation (`linear`): every frequency divided by `factor`.
    Linear,
    /// Any other kind, kept verbatim; [`ModelConfig::validate`] rejects it.
    Other(String),
}

/// `rope_scaling` block. Values are f64 because HF computes with them as Python floats.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeScaling {
    /// The scaling kind.
    pub kind: RopeScalingKind,
    /// Context extension factor `s`; for YaRN without `factor`, HF's
    /// `max_position_embeddings / original_max_position_embeddings`; 1.0 when absent otherwise.
    pub factor: f64,
    /// Pre-training context length `L0`; defaults to `max_position_embeddings` as in HF.
    pub original_max_position_embeddings: usize,
    /// YaRN `beta_fast` as HF uses it (`beta_fast or 32`: absent or 0 gives 32).
    pub beta_fast: f64,
    /// YaRN `beta_slow` as HF uses it (`beta_slow or 1`: absent or 0 gives 1).
    pub beta_slow: f64,
    /// YaRN `mscale`; 0.0 when absent (HF treats absent and 0 alike: "not given").
    pub mscale: f64,
    /// YaRN `mscale_all_dim`; 0.0 when absent (then no m² softmax factor, as in HF).
    pub mscale_all_dim: f64,
    /// Explicit `attention_factor` (cos/sin magnitude), overriding the mscale ratio when present.
    pub attention_factor: Option<f64>,
    /// YaRN `truncate` (floor/ceil the correction range); default true.
    pub truncate: bool,
}

/// HF `get_mscale` / `yarn_get_mscale`: `0.1 · k · ln s + 1`, or 1 when `s ≤ 1` (f64, same order).
fn yarn_get_mscale(scale: f64, mscale: f64) -> f64 {
    if scale <= 1.0 {
        return 1.0;
    }
    0.1 * mscale * scale.ln() + 1.0
}

impl ModelConfig {
    /// Attention softmax scale (spec §3.4): `Dqk^(-1/2) · m²` with
    /// `m = yarn_get_mscale(factor, mscale_all_dim)` when RoPE scaling is present and
    /// `mscale_all_dim` is non-zero; computed in f64 as HF does, rounded once to f32.
    ///
    /// This is transformers' `yarn_apply_mscale`, identical for its V3 and V2 classes in 5.x
    /// (it applies m² for any non-default rope type). Older HF V2 ports omitted the m² factor;
    /// DeepSeek's demo and vLLM apply it. V3: 0.1352337789.
    pub fn softmax_scale(&self) -> f32 {
        let mut scaling = (self.qk_head_dim() as f64).powf(-0.5);
        if let Some(rs) = &self.rope_scaling {
            if rs.mscale_all_dim != 0.0 {
                let m = yarn_get_mscale(rs.factor, rs.mscale_all_dim);
                scaling = scaling * m * m;
            }
        }
        scaling as f32
    }

    /// Inverse RoPE frequencies, one per rotary pair (`qk_rope_head_dim / 2` values), exactly as
    /// transformers 5.x `_compute_yarn_parameters` computes them with float32 tensors on an
    /// AVX-512 CPU (torch's float32 `pow` is SLEEF's, not correctly rounded; see `torch_pow.rs`)
    /// (spec §4):
    /// `pos_freqs = base^(arange(0,d,2)/d)` in f32, `extrap = 1/pos_freqs`,
    /// `interp = 1/(factor·pos_freqs)`, correction range `[low, high]` in f64 from
    /// `original_max_position_embeddings`, ramp `clamp((i − low)/(high − low), 0, 1)` in f32,
    /// `w = 1 − ramp`, `inv_freq = interp·(1 − w) + extrap·w`, each step rounded to f32.
    ///
    /// Without scaling: `1/pos_freqs`. Linear scaling: `1/pos_freqs / factor`.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        let dim = self.qk_rope_head_dim;
        let base = self.rope_theta as f64;
        // torch: base ** (arange(0, dim, 2).float() / dim), float32 pow as torch's CPU kernel
        // computes it (SLEEF for full 32-element blocks, powf for the tail).
        let exps: Vec<f32> = (0..dim).step_by(2).map(|i| i as f32 / dim as f32).collect();
        let pos_freqs = crate::torch_pow::torch_pow_scalar_base(self.rope_theta, &exps);
        let extrap: Vec<f32> = pos_freqs.iter().map(|&p| 1.0f32 / p).collect();
        let Some(rs) = &self.rope_scaling else {
            return extrap;
        };
        match rs.kind {
            RopeScalingKind::Yarn => {}
            RopeScalingKind::Linear => {
                // HF `_compute_linear_scaling_rope_parameters`: inv_freq /= factor.
                let f = rs.factor as f32;
                return extrap.iter().map(|&x| x / f).collect();
            }
            RopeScalingKind::Other(_) => return extrap,
        }
        let factor = rs.factor as f32;
        let interp: Vec<f32> = pos_freqs.iter().map(|&p| 1.0f32 / (factor * p)).collect();

        let (low, high) = yarn_correction_range(rs, dim, base);
        // linear_ramp_factor(low, high, dim // 2): `max += 0.001` in Python (f64) when equal.
        let (lo, hi) = if low == high {
            (low, high + 0.001)
        } else {
            (low, high)
        };
        let denom = (hi - lo) as f32;
        let lo32 = lo as f32;
        (0..dim / 2)
            .map(|i| {
                let ramp = ((i as f32 - lo32) / denom).clamp(0.0, 1.0);
                let w = 1.0f32 - ramp; // inv_freq_extrapolation_factor
                let a = interp[i] * (1.0f32 - w);
                let b = extrap[i] * w;
                a + b
            })
            .collect()
    }

    /// YaRN correction range `(low, high)` over rotary dims (spec §4 steps 2–3), as HF computes
    /// it in f64; `None` unless the RoPE scaling is YaRN. V3: (10, 23).
    pub fn yarn_correction_range(&self) -> Option<(f64, f64)> {
        let rs = self.rope_scaling.as_ref()?;
        (rs.kind == RopeScalingKind::Yarn)
            .then(|| yarn_correction_range(rs, self.qk_rope_head_dim, self.rope_theta as f64))
    }

    /// Magnitude factor applied to cos/sin (spec §4 step 6), as HF's `_compute_yarn_parameters`
    /// returns it: explicit `attention_factor`, else `get_mscale(s, mscale) /
    /// get_mscale(s, mscale_all_dim)` when both are non-zero, else `get_mscale(s)` =
    /// `0.1 ln s + 1`. 1.0 for plain and linear RoPE. V3 and V2-Lite: exactly 1.0.
    ///
    /// Note: the original Hub `modeling_deepseek.py` defaults a missing `mscale` to 1 and a
    /// missing `mscale_all_dim` to 0; it agrees with HF except when only `mscale_all_dim` is given.
    pub fn rope_attention_factor(&self) -> f32 {
        let Some(rs) = &self.rope_scaling else {
            return 1.0;
        };
        if rs.kind != RopeScalingKind::Yarn {
            return 1.0;
        }
        if let Some(a) = rs.attention_factor {
            return a as f32;
        }
        let f = if rs.mscale != 0.0 && rs.mscale_all_dim != 0.0 {
            yarn_get_mscale(rs.factor, rs.mscale) / yarn_get_mscale(rs.factor, rs.mscale_all_dim)
        } else {
            yarn_get_mscale(rs.factor, 1.0)
        };
        f as f32
    }
}

/// HF `find_correction_range(beta_fast, beta_slow, dim, base, original_max_position_embeddings,
/// truncate)` in f64, including `max(low, 0)` / `min(high, dim − 1)`.
fn yarn_correction_range(rs: &RopeScaling, dim: usize, base: f64) -> (f64, f64) {
    let l0 = rs.original_max_position_embeddings as f64;
    let d = dim as f64;
    // (dim * log(L0 / (n * 2 * pi))) / (2 * log(base)), Python evaluation order.
    let cd = |n: f64| (d * (l0 / (n * 2.0 * std::f64::consts::PI)).ln()) / (2.0 * base.ln());
    let beta_fast = if rs.beta_fast == 0.0 {
        32.0
    } else {
        rs.beta_fast
    };
    let beta_slow = if rs.beta_slow == 0.0 {
        1.0
    } else {
        rs.beta_slow
    };
    let (mut low, mut high) = (cd(beta_fast), cd(beta_slow));
    if rs.truncate {
        low = low.floor();
        high = high.ceil();
    }
    (low.max(0.0), high.min(d - 1.0))
}

/// `(rope_theta, rope_scaling)` following HF's `convert_rope_params_to_dict` and
/// `standardize_rope_params`: `rope_scaling` (legacy) wins over `rope_parameters`; inside it
/// `rope_type` wins over `type`; `rope_theta` inside the dict wins over the top-level one.
pub(crate) fn parse_rope(
    o: &Obj<'_>,
    max_position_embeddings: usize,
) -> Result<(f32, Option<RopeScaling>)> {
    let mut dict: Option<(&Map<String, Value>, &'static str)> = None;
    for key in ["rope_scaling", "rope_parameters"] {
        match o.get(key) {
            Field::Absent | Field::Null => continue,
            Field::Val(Value::Object(m)) if m.is_empty() => continue,
            Field::Val(Value::Object(m)) => {
                dict = Some((
                    m,
                    if key == "rope_scaling" {
                        "rope_scaling."
                    } else {
                        "rope_parameters."
                    },
                ));
                break;
            }
            Field::Val(v) => return Err(o.err(key, "an object", v)),
        }
    }
    let top_theta = o.f64_or("rope_theta", 10000.0)?;
    let Some((m, prefix)) = dict else {
        return Ok((top_theta as f32, None));
    };
    let r = Obj {
        map: m,
        src: o.src,
        prefix,
    };
    let theta = r.f64_or("rope_theta", top_theta)?;
    let kind_str = match r.opt_string("rope_type")? {
        Some(s) => s,
        None => r.opt_string("type")?.unwrap_or_else(|| "default".into()),
    };
    let kind = match kind_str.as_str() {
        "default" => return Ok((theta as f32, None)),
        "yarn" | "deepseek_yarn" => RopeScalingKind::Yarn,
        "linear" => RopeScalingKind::Linear,
        other => RopeScalingKind::Other(other.to_string()),
    };
    let original = r.usize_or("original_max_position_embeddings", max_position_embeddings)?;
    let factor = match r.opt_f64("factor")? {
        Some(f) => f,
        None if kind == RopeScalingKind::Yarn && original > 0 => {
            max_position_embeddings as f64 / original as f64
        }
        None => 1.0,
    };
    let beta_fast = r.f64_or("beta_fast", 32.0)?;
    let beta_slow = r.f64_or("beta_slow", 1.0)?;
    Ok((
        theta as f32,
        Some(RopeScaling {
            kind,
            factor,
            original_max_position_embeddings: original,
            beta_fast: if beta_fast == 0.0 { 32.0 } else { beta_fast },
            beta_slow: if beta_slow == 0.0 { 1.0 } else { beta_slow },
            mscale: r.f64_or("mscale", 0.0)?,
            mscale_all_dim: r.f64_or("mscale_all_dim", 0.0)?,
            attention_factor: r.opt_f64("attention_factor")?,
            truncate: r.bool_or("truncate", true)?,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mscale_matches_spec() {
        let m = yarn_get_mscale(40.0, 1.0);
        assert!((m - 1.368_887_945_4).abs() < 1e-10);
        assert_eq!(yarn_get_mscale(1.0, 1.0), 1.0);
        assert_eq!(yarn_get_mscale(0.5, 1.0), 1.0);
    }
}
