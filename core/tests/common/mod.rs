//! Independent, slow reference model of the f32 → narrow-format conversions, shared by the
//! conversion tests.
//!
//! Nothing here looks at how `concord_core::convert` works. A format is described only by its
//! field widths; every code is decoded with the textbook formula, the non-negative finite values
//! are sorted into a grid, and an f32 is rounded by locating its two neighbouring grid values and
//! comparing it with their midpoint (ties to the code with an even last bit).
//!
//! All the arithmetic is exact although it uses f64: every f32, every value of the narrow formats
//! and every midpoint of two adjacent narrow values has at most 25 significant bits and an
//! exponent inside f64's normal range, so sums of two adjacent grid values, halvings and
//! comparisons are all exact. The code asserts the one conversion where this matters (midpoints
//! back to f32).

#![allow(dead_code)]

/// Field layout of a binary floating-point storage format.
#[derive(Clone, Copy, Debug)]
pub struct Format {
    /// Name for messages.
    pub name: &'static str,
    /// Total width in bits (8 or 16), sign included.
    pub bits: u32,
    /// Exponent field width.
    pub exp_bits: u32,
    /// Stored mantissa width.
    pub man_bits: u32,
    /// Exponent bias.
    pub bias: i32,
    /// `true`: IEEE-like, the all-ones exponent holds ∞ (mantissa 0) and NaNs.
    /// `false`: "fn" format (e4m3fn), only the all-ones exponent *and* mantissa is NaN.
    pub ieee: bool,
}

/// bfloat16.
pub const BF16: Format = Format {
    name: "bf16",
    bits: 16,
    exp_bits: 8,
    man_bits: 7,
    bias: 127,
    ieee: true,
};
/// IEEE binary16.
pub const F16: Format = Format {
    name: "f16",
    bits: 16,
    exp_bits: 5,
    man_bits: 10,
    bias: 15,
    ieee: true,
};
/// float8 e4m3fn.
pub const E4M3: Format = Format {
    name: "e4m3fn",
    bits: 8,
    exp_bits: 4,
    man_bits: 3,
    bias: 7,
    ieee: false,
};
/// float8 e5m2.
pub const E5M2: Format = Format {
    name: "e5m2",
    bits: 8,
    exp_bits: 5,
    man_bits: 2,
    bias: 15,
    ieee: true,
};

/// 2^k as an f64, built from its bit pattern (exact; |k| ≤ 1022).
pub fn pow2(k: i32) -> f64 {
    assert!((-1022..=1023).contains(&k));
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// A decoded code.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decoded {
    /// A finite value (exact).
    Finite(f64),
    /// ±∞ (`true` = negative).
    Inf(bool),
    /// Any NaN.
    NaN,
}

impl Format {
    /// The sign bit of a code.
    pub fn sign_bit(&self) -> u32 {
        1 << (self.bits - 1)
    }

    /// Decodes a code with the textbook formula:
    /// E = 0: (−1)^S · M · 2^(1−bias−m); otherwise (−1)^S · (2^m + M) · 2^(E−bias−m).
    pub fn decode(&self, code: u32) -> Decoded {
        assert!(code < (1 << self.bits));
        let neg = code & self.sign_bit() != 0;
        let e = ((code >> self.man_bits) & ((1 << self.exp_bits) - 1)) as i32;
        let m = code & ((1 << self.man_bits) - 1);
        let e_max = (1 << self.exp_bits) - 1;
        if self.ieee && e == e_max {
            return if m == 0 {
                Decoded::Inf(neg)
            } else {
                Decoded::NaN
            };
        }
        if !self.ieee && e == e_max && m == (1 << self.man_bits) - 1 {
            return Decoded::NaN;
        }
        let mag = if e == 0 {
            m as f64 * pow2(1 - self.bias - self.man_bits as i32)
        } else {
            ((1u32 << self.man_bits) + m) as f64 * pow2(e - self.bias - self.man_bits as i32)
        };
        Decoded::Finite(if neg { -mag } else { mag })
    }

    /// The non-negative finite values in ascending order with their codes, followed by one
    /// *virtual* entry: the value one top-binade ulp above the largest finite value, carrying
    /// the code `max + 1`. Rounding to the virtual entry means "overflow"; its code's parity
    /// decides the tie at the overflow point, exactly like IEEE rounding with an unbounded
    /// exponent.
    pub fn grid(&self) -> Grid {
        let mut vals = Vec::new();
        for code in 0..self.sign_bit() {
            if let Decoded::Finite(v) = self.decode(code) {
                vals.push((v, code));
            }
        }
        vals.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        for w in vals.windows(2) {
            assert!(
                w[0].0 < w[1].0,
                "{}: values not strictly increasing",
                self.name
            );
        }
        let n = vals.len();
        let (max, max_code) = vals[n - 1];
        let ulp = max - vals[n - 2].0;
        vals.push((max + ulp, max_code + 1));
        Grid {
            vals: vals.iter().map(|v| v.0).collect(),
            codes: vals.iter().map(|v| v.1).collect(),
        }
    }
}

/// Sorted non-negative grid of a format (see [`Format::grid`]).
pub struct Grid {
    /// Values, ascending; the last one is virtual.
    pub vals: Vec<f64>,
    /// Matching codes.
    pub codes: Vec<u32>,
}

/// Result of rounding a non-negative finite magnitude onto a grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounded {
    /// A finite code (sign bit clear).
    Code(u32),
    /// The value rounds past the largest finite value.
    Overflow,
}

impl Grid {
    /// Rounds a non-negative finite `v` to nearest, ties to the even code, by locating its two
    /// neighbouring grid values and comparing it with their (exact) midpoint.
    pub fn round(&self, v: f64) -> Rounded {
        assert!(v >= 0.0 && v.is_finite());
        let last = self.vals.len() - 1;
        // i: index of the largest grid value ≤ v (vals[0] = 0 ≤ v).
        let i = self.vals.partition_point(|&g| g <= v) - 1;
        let pick = |j: usize| {
            if j == last {
                Rounded::Overflow
            } else {
                Rounded::Code(self.codes[j])
            }
        };
        if i == last {
            return Rounded::Overflow;
        }
        let (lo, hi) = (self.vals[i], self.vals[i + 1]);
        if v == lo {
            return pick(i);
        }
        let mid = (lo + hi) * 0.5;
        if v < mid {
            pick(i)
        } else if v > mid {
            pick(i + 1)
        } else if self.codes[i] & 1 == 0 {
            pick(i)
        } else {
            pick(i + 1)
        }
    }

    /// Partition of the non-negative f32 bit patterns 0 ..= 0x7F80_0000 (+0 up to +∞) into
    /// runs with the same rounded result: `(first bits of the run, result)`, ascending. The
    /// boundary between two neighbours lo < hi is their midpoint, which is an f32 (asserted);
    /// the midpoint itself belongs to the neighbour with the even code. The last run,
    /// `Overflow`, extends to +∞ inclusive.
    pub fn f32_runs(&self) -> Vec<(u32, Rounded)> {
        let last = self.vals.len() - 1;
        let mut runs = vec![(0u32, Rounded::Code(self.codes[0]))];
        for i in 0..last {
            let mid = (self.vals[i] + self.vals[i + 1]) * 0.5;
            let mid32 = mid as f32;
            assert_eq!(mid32 as f64, mid, "midpoint not representable in f32");
            let start = if self.codes[i + 1] & 1 == 0 {
                mid32.to_bits()
            } else {
                mid32.to_bits() + 1
            };
            let r = if i + 1 == last {
                Rounded::Overflow
            } else {
                Rounded::Code(self.codes[i + 1])
            };
            runs.push((start, r));
        }
        for w in runs.windows(2) {
            assert!(w[0].0 < w[1].0);
        }
        assert!(runs[last].0 <= 0x7F80_0000);
        runs
    }
}

/// The six conversions under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conv {
    /// `f32_to_bf16`.
    Bf16,
    /// `f32_to_f16`.
    F16,
    /// `f32_to_e4m3_satfinite`.
    E4m3Sat,
    /// `f32_to_e4m3_nosat`.
    E4m3NoSat,
    /// `f32_to_e5m2_satfinite`.
    E5m2Sat,
    /// `f32_to_e5m2_nosat`.
    E5m2NoSat,
}

/// All six, in a fixed order.
pub const ALL_CONVS: [Conv; 6] = [
    Conv::Bf16,
    Conv::F16,
    Conv::E4m3Sat,
    Conv::E4m3NoSat,
    Conv::E5m2Sat,
    Conv::E5m2NoSat,
];

impl Conv {
    /// The target format.
    pub fn format(self) -> Format {
        match self {
            Conv::Bf16 => BF16,
            Conv::F16 => F16,
            Conv::E4m3Sat | Conv::E4m3NoSat => E4M3,
            Conv::E5m2Sat | Conv::E5m2NoSat => E5M2,
        }
    }

    /// Specified output for a NaN input with the given sign.
    pub fn nan_code(self, neg: bool) -> u32 {
        let s = if neg { self.format().sign_bit() } else { 0 };
        match self {
            Conv::Bf16 => 0x7FC0,
            Conv::F16 => 0x7E00 | s,
            Conv::E4m3Sat | Conv::E5m2Sat => 0x7F,
            Conv::E4m3NoSat | Conv::E5m2NoSat => 0x7F | s,
        }
    }

    /// Specified output for a finite magnitude that rounds past the largest finite value, and
    /// for ±∞ (sign bit clear; the caller ORs the sign in).
    pub fn overflow_code(self) -> u32 {
        match self {
            Conv::Bf16 => 0x7F80,
            Conv::F16 => 0x7C00,
            Conv::E4m3Sat => 0x7E,
            Conv::E4m3NoSat => 0x7F,
            Conv::E5m2Sat => 0x7B,
            Conv::E5m2NoSat => 0x7C,
        }
    }

    /// Specified output for a rounded magnitude and a sign.
    pub fn finish(self, r: Rounded, neg: bool) -> u32 {
        let s = if neg { self.format().sign_bit() } else { 0 };
        match r {
            Rounded::Code(c) => s | c,
            Rounded::Overflow => s | self.overflow_code(),
        }
    }

    /// The slow reference: the specified output for the f32 with bits `u`.
    pub fn reference(self, grid: &Grid, u: u32) -> u32 {
        let x = f32::from_bits(u);
        let neg = u >> 31 != 0;
        if x.is_nan() {
            self.nan_code(neg)
        } else if x.is_infinite() {
            self.finish(Rounded::Overflow, neg)
        } else {
            self.finish(grid.round((x as f64).abs()), neg)
        }
    }

    /// The fast conversion under test, widened to u32.
    #[inline(always)]
    pub fn fast(self, x: f32) -> u32 {
        use concord_core::convert::*;
        match self {
            Conv::Bf16 => f32_to_bf16(x) as u32,
            Conv::F16 => f32_to_f16(x) as u32,
            Conv::E4m3Sat => f32_to_e4m3_satfinite(x) as u32,
            Conv::E4m3NoSat => f32_to_e4m3_nosat(x) as u32,
            Conv::E5m2Sat => f32_to_e5m2_satfinite(x) as u32,
            Conv::E5m2NoSat => f32_to_e5m2_nosat(x) as u32,
        }
    }
}
