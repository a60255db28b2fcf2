//! The format of FP8 activation scales (`quantization_config.scale_fmt`, docs/numerics.md §6).
//!
//! DeepSeek-V3.1 checkpoints set `scale_fmt: "ue8m0"`: each activation block's scale is
//! rounded up to a power of two, so that it fits an unsigned 8-bit exponent (UE8M0) the way
//! accelerators with power-of-two block scales store it. The scale is still kept as f32.
use serde::Serialize;

/// How an activation block's scale `s = max(amax, 1e-4) / 448` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum ActScaleFormat {
    /// `s` as computed (DeepSeek-V3; `scale_fmt` absent or null).
    #[default]
    F32,
    /// `s` rounded up to the nearest power of two ([`round_up_to_power_of_two`]).
    Ue8m0,
}

impl ActScaleFormat {
    /// The format a `scale_fmt` value names (`None` for absent or null), or `None` for an
    /// unknown spelling.
    pub fn parse(scale_fmt: Option<&str>) -> Option<Self> {
        match scale_fmt {
            None => Some(ActScaleFormat::F32),
            Some("ue8m0") => Some(ActScaleFormat::Ue8m0),
            Some(_) => None,
        }
    }

    /// The `config.json` spelling (`none` for plain f32 scales, which have no spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            ActScaleFormat::F32 => "none",
            ActScaleFormat::Ue8m0 => "ue8m0",
        }
    }

    /// The stored scale for a computed scale `s`.
    #[inline]
    pub fn apply(self, s: f32) -> f32 {
        match self {
            ActScaleFormat::F32 => s,
            ActScaleFormat::Ue8m0 => round_up_to_power_of_two(s),
        }
    }
}

impl std::fmt::Display for ActScaleFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// f32 exponent field.
const EXPONENT_MASK: u32 = 0x7F80_0000;
/// f32 mantissa field.
const MANTISSA_MASK: u32 = 0x007F_FFFF;
/// One unit of the exponent field: the next power of two.
const EXPONENT_ONE: u32 = 0x0080_0000;

/// A normal f32 rounded up to the nearest power of two, with bit operations only: unchanged
/// when its mantissa bits are zero, else `2^(exponent + 1)` with a zero mantissa (DeepSeek's
/// `fast_log2_ceil` + `fast_pow2`). NaN and ±∞ come back unchanged. Activation scales are
/// always normal (`s ≥ 1e-4 / 448`); a subnormal input is outside this function's domain.
///
/// No `log2`/`exp2`: their results differ between vendors' libraries, and a float `log2` of
/// a value just above a power of two can round down to the integer, halving the scale.
#[inline]
pub fn round_up_to_power_of_two(s: f32) -> f32 {
    let bits = s.to_bits();
    if bits & EXPONENT_MASK == EXPONENT_MASK || bits & MANTISSA_MASK == 0 {
        return s;
    }
    f32::from_bits((bits & !MANTISSA_MASK) + EXPONENT_ONE)
}
