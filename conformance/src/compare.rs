//! Comparing output bytes: bit for bit, with NaN matching any NaN (docs/numerics.md §1), and
//! when they differ, the largest distance in units in the last place and the NMSE.

use concord_core::convert::{bf16_to_f32, e4m3_to_f32};
use concord_core::DType;

/// How two outputs of the same descriptor differ.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// Elements that differ (two NaNs do not).
    pub mismatched: usize,
    /// Largest distance between differing elements, in representable steps of the dtype
    /// (integer difference for U32); `u64::MAX` when a NaN meets a number.
    pub max_ulp: u64,
    /// Σ(y − y_ref)² / Σ y_ref² over the elements finite in both; `None` for integer outputs
    /// or when the reference is all zero and the output is not.
    pub nmse: Option<f64>,
    /// The first differing element, as text.
    pub first: Option<String>,
}

impl Diff {
    /// True when every element matches.
    pub fn is_exact(&self) -> bool {
        self.mismatched == 0
    }
    /// Folds another output's difference into this one.
    pub fn merge(&mut self, other: Diff) {
        self.mismatched += other.mismatched;
        self.max_ulp = self.max_ulp.max(other.max_ulp);
        self.nmse = match (self.nmse, other.nmse) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// An element as (value, position on the number line, is NaN); the position makes adjacent
/// representable values differ by one.
fn element(dtype: DType, b: &[u8]) -> (f64, i64, bool) {
    match dtype {
        DType::F32 => {
            let u = u32::from_le_bytes(b.try_into().expect("4 bytes"));
            let v = f32::from_bits(u);
            (f64::from(v), ordered(u64::from(u), 31), v.is_nan())
        }
        DType::BF16 => {
            let u = u16::from_le_bytes(b.try_into().expect("2 bytes"));
            let v = bf16_to_f32(u);
            (f64::from(v), ordered(u64::from(u), 15), v.is_nan())
        }
        DType::F8E4M3 => {
            let v = e4m3_to_f32(b[0]);
            (f64::from(v), ordered(u64::from(b[0]), 7), v.is_nan())
        }
        _ => {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            let u = u64::from_le_bytes(w);
            (u as f64, u as i64, false)
        }
    }
}

/// Sign-magnitude bits to a signed position (−0 and +0 both at 0).
fn ordered(bits: u64, sign_bit: u32) -> i64 {
    let mag = (bits & ((1u64 << sign_bit) - 1)) as i64;
    if bits >> sign_bit & 1 == 1 {
        -mag
    } else {
        mag
    }
}

/// Compares `got` with the reference `want` (same dtype and length).
pub fn compare(dtype: DType, want: &[u8], got: &[u8]) -> Diff {
    let mut diff = Diff::default();
    if want.len() != got.len() {
        diff.mismatched = want.len().max(got.len());
        diff.max_ulp = u64::MAX;
        diff.first = Some(format!("{} bytes vs {} bytes", got.len(), want.len()));
        return diff;
    }
    let es = dtype.size_in_bytes().max(1);
    let float = matches!(dtype, DType::F32 | DType::BF16 | DType::F8E4M3);
    let (mut err, mut energy) = (0.0f64, 0.0f64);
    for (i, (w, g)) in want.chunks_exact(es).zip(got.chunks_exact(es)).enumerate() {
        let (wv, wp, wn) = element(dtype, w);
        let (gv, gp, gn) = element(dtype, g);
        if wv.is_finite() && gv.is_finite() {
            energy += wv * wv;
            err += (gv - wv) * (gv - wv);
        }
        if w == g || (wn && gn) {
            continue;
        }
        diff.mismatched += 1;
        let ulp = if wn != gn {
            u64::MAX
        } else {
            wp.abs_diff(gp).max(1)
        };
        diff.max_ulp = diff.max_ulp.max(ulp);
        if diff.first.is_none() {
            diff.first = Some(format!(
                "element {i}: reference {wv:e} ({w:02x?}), got {gv:e} ({g:02x?})"
            ));
        }
    }
    diff.nmse = if !float {
        None
    } else if energy > 0.0 {
        Some(err / energy)
    } else if err == 0.0 {
        Some(0.0)
    } else {
        None
    };
    diff
}

/// The first element finite in one of `want`, `got` and not in the other (fast mode must keep
/// every non-finite exact output non-finite, and add none).
pub fn finiteness_differs(dtype: DType, want: &[u8], got: &[u8]) -> Option<usize> {
    let es = dtype.size_in_bytes().max(1);
    if !matches!(dtype, DType::F32 | DType::BF16 | DType::F8E4M3) {
        return None;
    }
    want.chunks_exact(es)
        .zip(got.chunks_exact(es))
        .position(|(w, g)| element(dtype, w).0.is_finite() != element(dtype, g).0.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_matches_any_nan_and_ulps_count_steps() {
        let f = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let a = f(&[1.0, f32::NAN, -0.0]);
        let b = f(&[f32::from_bits(1.0f32.to_bits() + 3), -f32::NAN, -0.0]);
        let d = compare(DType::F32, &a, &b);
        assert_eq!((d.mismatched, d.max_ulp), (1, 3));
        let c = f(&[1.0, f32::NAN, 0.0]);
        let d = compare(DType::F32, &a, &c);
        assert_eq!((d.mismatched, d.max_ulp), (1, 1));
        assert!(compare(DType::F32, &a, &a).is_exact());
    }
}
