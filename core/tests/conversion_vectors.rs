//! Test vectors for the bit-exact conversions: spec §6.7 (f32 → e4m3fn, satfinite and NOSAT
//! columns), §6.8 (f32 → bf16), exhaustive decodes of every e4m3fn / e5m2 / f16 / bf16 code
//! against the textbook formulas, f16 and e5m2 vectors, NaN handling and round trips.

mod common;

use common::{Decoded, Format, BF16, E4M3, E5M2, F16};
use concord_core::convert::*;

/// Spec §6.7 e4m3fn decode formula, written out in f64 (independent of the crate and of
/// `common`): E = 0 → M·2⁻⁹; otherwise (1 + M/8)·2^(E−7); S.1111.111 → NaN.
fn e4m3_formula(b: u8) -> f64 {
    let s = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let e = ((b >> 3) & 0xF) as i32;
    let m = (b & 7) as f64;
    if e == 15 && m == 7.0 {
        f64::NAN
    } else if e == 0 {
        s * m * 2f64.powi(-9)
    } else {
        s * (1.0 + m / 8.0) * 2f64.powi(e - 7)
    }
}

/// IEEE-style decode formula in f64 for e5m2 / f16 / bf16 (exponent width `we`, mantissa
/// width `wm`, bias `2^(we−1) − 1`).
fn ieee_formula(code: u32, we: u32, wm: u32) -> f64 {
    let s = if code >> (we + wm) & 1 != 0 {
        -1.0
    } else {
        1.0
    };
    let e = ((code >> wm) & ((1 << we) - 1)) as i32;
    let m = (code & ((1 << wm) - 1)) as f64;
    let bias = (1 << (we - 1)) - 1;
    let scale = 2f64.powi(wm as i32);
    if e == (1 << we) - 1 {
        if m == 0.0 {
            s * f64::INFINITY
        } else {
            f64::NAN
        }
    } else if e == 0 {
        s * (m / scale) * 2f64.powi(1 - bias)
    } else {
        s * (1.0 + m / scale) * 2f64.powi(e - bias)
    }
}

/// Same value, same sign (so −0 ≠ +0), NaN only equal to NaN.
fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a == b && a.is_sign_negative() == b.is_sign_negative())
}

fn common_decode(fmt: Format, code: u32) -> f64 {
    match fmt.decode(code) {
        Decoded::Finite(v) => v,
        Decoded::Inf(neg) => {
            if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        Decoded::NaN => f64::NAN,
    }
}

// ---------------------------------------------------------------------------------------------
// Spec §6.7

/// (f32 bits, satfinite byte, NOSAT byte, decoded satfinite value). The −qNaN satfinite entry
/// follows the CUDA header's software path (0x7F).
const E4M3_VECTORS: &[(u32, u8, u8, f64)] = &[
    (0x0000_0000, 0x00, 0x00, 0.0),
    (0x8000_0000, 0x80, 0x80, -0.0),
    (0x3F80_0000, 0x38, 0x38, 1.0),
    (0xBF80_0000, 0xB8, 0xB8, -1.0),
    (0x3DCC_CCCD, 0x1D, 0x1D, 0.1015625),
    (0xC020_0000, 0xC2, 0xC2, -2.5),
    (0x3F88_0000, 0x38, 0x38, 1.0),
    (0x3F98_0000, 0x3A, 0x3A, 1.25),
    (0x4370_0000, 0x77, 0x77, 240.0),
    (0x4396_0000, 0x79, 0x79, 288.0),
    (0x43E0_0000, 0x7E, 0x7E, 448.0),
    (0xC3E0_0000, 0xFE, 0xFE, -448.0),
    (0x43E4_0000, 0x7E, 0x7E, 448.0),
    (0x43E8_0000, 0x7E, 0x7E, 448.0),
    (0x43E8_0001, 0x7E, 0x7F, 448.0),
    (0x43EB_0000, 0x7E, 0x7F, 448.0),
    (0x43F0_0000, 0x7E, 0x7F, 448.0),
    (0x4974_2400, 0x7E, 0x7F, 448.0),
    (0x7F80_0000, 0x7E, 0x7F, 448.0),
    (0xFF80_0000, 0xFE, 0xFF, -448.0),
    (0x7FC0_0000, 0x7F, 0x7F, f64::NAN),
    (0xFFC0_0000, 0x7F, 0xFF, f64::NAN),
    (0x3C80_0000, 0x08, 0x08, 0.015625),
    (0x3C60_0000, 0x07, 0x07, 0.013671875),
    (0x3C70_0000, 0x08, 0x08, 0.015625),
    (0x3B00_0000, 0x01, 0x01, 0.001953125),
    (0x3B40_0000, 0x02, 0x02, 0.00390625),
    (0x3A80_0000, 0x00, 0x00, 0.0),
    (0x3A80_0001, 0x01, 0x01, 0.001953125),
    (0xAEDB_E6FF, 0x80, 0x80, -0.0),
    (0x0000_0001, 0x00, 0x00, 0.0),
];

#[test]
fn spec_6_7_e4m3_vectors() {
    for &(bits, sat, nosat, decoded) in E4M3_VECTORS {
        let x = f32::from_bits(bits);
        assert_eq!(f32_to_e4m3_satfinite(x), sat, "satfinite({bits:#010x})");
        assert_eq!(f32_to_e4m3_nosat(x), nosat, "nosat({bits:#010x})");
        let d = e4m3_to_f32(sat) as f64;
        assert!(
            same(d, decoded),
            "decode({sat:#04x}) = {d}, expected {decoded}"
        );
    }
    // The named inputs of the table, as values (checks the bit patterns above as well).
    let named: &[(f32, u32)] = &[
        (1.0, 0x3F80_0000),
        (0.1, 0x3DCC_CCCD),
        (-2.5, 0xC020_0000),
        (1.0625, 0x3F88_0000),
        (1.1875, 0x3F98_0000),
        (240.0, 0x4370_0000),
        (300.0, 0x4396_0000),
        (448.0, 0x43E0_0000),
        (456.0, 0x43E4_0000),
        (464.0, 0x43E8_0000),
        (470.0, 0x43EB_0000),
        (480.0, 0x43F0_0000),
        (1e6, 0x4974_2400),
        (-1e-10, 0xAEDB_E6FF),
        (0.015625, 0x3C80_0000),
        (7.0 / 512.0, 0x3C60_0000),
        (7.5 / 512.0, 0x3C70_0000),
        (1.0 / 512.0, 0x3B00_0000),
        (1.5 / 512.0, 0x3B40_0000),
        (1.0 / 1024.0, 0x3A80_0000),
    ];
    for &(x, bits) in named {
        assert_eq!(x.to_bits(), bits, "{x}");
    }
    assert_eq!(E4M3_MAX, 448.0);
    assert_eq!(E4M3_MAX, e4m3_to_f32(0x7E));
}

#[test]
fn spec_6_1_e4m3_examples() {
    let examples: &[(u8, f32)] = &[
        (0x38, 1.0),
        (0x3A, 1.25),
        (0x1D, 0.1015625),
        (0x42, 2.5),
        (0x77, 240.0),
        (0x78, 256.0),
        (0x79, 288.0),
        (0x7E, 448.0),
        (0xFE, -448.0),
        (0x01, 1.0 / 512.0),
        (0x07, 0.013671875),
        (0x08, 0.015625),
    ];
    for &(b, v) in examples {
        assert_eq!(e4m3_to_f32(b), v, "{b:#04x}");
    }
    assert_eq!(e4m3_to_f32(0x80).to_bits(), 0x8000_0000, "0x80 is −0");
    assert_eq!(e4m3_to_f32(0x00).to_bits(), 0);
    assert!(e4m3_to_f32(0x7F).is_nan() && e4m3_to_f32(0xFF).is_nan());
}

#[test]
fn every_e4m3_decode_matches_formula() {
    for b in 0..=255u8 {
        let want = e4m3_formula(b);
        let got = e4m3_to_f32(b) as f64;
        assert!(same(got, want), "{b:#04x}: {got} vs formula {want}");
        assert!(
            same(got, common_decode(E4M3, b as u32)),
            "{b:#04x}: common model"
        );
    }
}

#[test]
fn every_e5m2_decode_matches_formula() {
    for b in 0..=255u8 {
        let want = ieee_formula(b as u32, 5, 2);
        let got = e5m2_to_f32(b) as f64;
        assert!(same(got, want), "{b:#04x}: {got} vs formula {want}");
        assert!(
            same(got, common_decode(E5M2, b as u32)),
            "{b:#04x}: common model"
        );
    }
    assert_eq!(E5M2_MAX, 57344.0);
    assert_eq!(E5M2_MAX, e5m2_to_f32(0x7B));
    assert_eq!(e5m2_to_f32(0x7C), f32::INFINITY);
    assert_eq!(e5m2_to_f32(0xFC), f32::NEG_INFINITY);
    assert_eq!(e5m2_to_f32(0x01), 2f32.powi(-16));
}

#[test]
fn every_f16_and_bf16_decode_matches_formula() {
    for h in 0..=u16::MAX {
        let want = ieee_formula(h as u32, 5, 10);
        let got = f16_to_f32(h) as f64;
        assert!(same(got, want), "f16 {h:#06x}: {got} vs formula {want}");
        assert!(
            same(got, common_decode(F16, h as u32)),
            "f16 {h:#06x}: common model"
        );
        let want = ieee_formula(h as u32, 8, 7);
        let got = bf16_to_f32(h) as f64;
        assert!(same(got, want), "bf16 {h:#06x}: {got} vs formula {want}");
        assert!(
            same(got, common_decode(BF16, h as u32)),
            "bf16 {h:#06x}: common model"
        );
    }
}

#[test]
fn nan_decodes_keep_sign() {
    assert!(f16_to_f32(0x7E00).is_nan() && f16_to_f32(0x7E00).is_sign_positive());
    assert!(f16_to_f32(0xFE00).is_nan() && f16_to_f32(0xFE00).is_sign_negative());
    assert_eq!(f16_to_f32(0x7E00).to_bits(), 0x7FC0_0000);
    assert!(f16_to_f32(0x7C01).is_nan(), "signalling NaN stays NaN");
    assert!(e4m3_to_f32(0xFF).is_sign_negative());
    for b in [0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF] {
        assert!(e5m2_to_f32(b).is_nan(), "{b:#04x}");
    }
}

// ---------------------------------------------------------------------------------------------
// Spec §6.8

#[test]
fn spec_6_8_bf16_vectors() {
    let vectors: &[(u32, u16)] = &[
        (0x3F80_0000, 0x3F80),
        (0x3F80_8000, 0x3F80),
        (0x3F81_8000, 0x3F82),
        (0x3F80_8001, 0x3F81),
        (0x4049_0FDB, 0x4049),
        (0x3DCC_CCCD, 0x3DCD),
        (0x43E0_0000, 0x43E0),
        (0x8000_0000, 0x8000),
        (0x7F7F_FFFF, 0x7F80),
        (0x7F7F_8000, 0x7F80),
        (0x7F7F_7FFF, 0x7F7F),
        (0x0000_0001, 0x0000),
        (0x7FC0_0000, 0x7FC0),
        // Beyond the spec list: signs, ∞, more NaNs, subnormal rounding.
        (0xFF7F_FFFF, 0xFF80),
        (0x7F80_0000, 0x7F80),
        (0xFF80_0000, 0xFF80),
        (0xFFC0_0000, 0x7FC0),
        (0x7F80_0001, 0x7FC0),
        (0xFFFF_FFFF, 0x7FC0),
        (0x0000_8000, 0x0000),
        (0x0000_8001, 0x0001),
        (0x0001_8000, 0x0002),
        (0x807F_FFFF, 0x8080),
    ];
    for &(bits, want) in vectors {
        let x = f32::from_bits(bits);
        assert_eq!(f32_to_bf16(x), want, "f32_to_bf16({bits:#010x})");
        let r = round_to_bf16(x);
        if x.is_nan() {
            assert!(r.is_nan());
        } else {
            assert_eq!(
                r.to_bits(),
                (want as u32) << 16,
                "round_to_bf16({bits:#010x})"
            );
        }
    }
    assert_eq!(f32_to_bf16(std::f32::consts::PI), 0x4049);
    assert_eq!(f32_to_bf16(0.1), 0x3DCD);
    assert_eq!(round_to_bf16(1.0 + 1.0 / 256.0), 1.0);
}

// ---------------------------------------------------------------------------------------------
// f16 and e5m2

#[test]
fn f16_vectors() {
    let p = |k: i32| 2f32.powi(k);
    let vectors: &[(f32, u16)] = &[
        (1.0, 0x3C00),
        (-1.0, 0xBC00),
        (0.0, 0x0000),
        (-0.0, 0x8000),
        (65504.0, 0x7BFF),
        (65519.996, 0x7BFF),
        (65520.0, 0x7C00),
        (-65520.0, 0xFC00),
        (1e10, 0x7C00),
        (f32::INFINITY, 0x7C00),
        (f32::NEG_INFINITY, 0xFC00),
        (f32::MAX, 0x7C00),
        (p(-14), 0x0400),
        (p(-24), 0x0001),
        (-p(-24), 0x8001),
        (p(-25), 0x0000),
        (-p(-25), 0x8000),
        (f32::from_bits(p(-25).to_bits() + 1), 0x0001),
        (3.0 * p(-26), 0x0001),
        (3.0 * p(-25), 0x0002),
        (5.0 * p(-25), 0x0002),
        (1023.0 * p(-24), 0x03FF),
        (1023.5 * p(-24), 0x0400),
        (1.0 + p(-11), 0x3C00),
        (1.0 + 3.0 * p(-11), 0x3C02),
        (0.1, 0x2E66),
        (std::f32::consts::PI, 0x4248),
        (f32::from_bits(1), 0x0000),
        (f32::MIN_POSITIVE, 0x0000),
    ];
    for &(x, want) in vectors {
        assert_eq!(
            f32_to_f16(x),
            want,
            "f32_to_f16({x:e} = {:#010x})",
            x.to_bits()
        );
    }
}

#[test]
fn e5m2_vectors() {
    let p = |k: i32| 2f32.powi(k);
    // (input, satfinite, nosat)
    let vectors: &[(f32, u8, u8)] = &[
        (0.0, 0x00, 0x00),
        (-0.0, 0x80, 0x80),
        (1.0, 0x3C, 0x3C),
        (-1.5, 0xBE, 0xBE),
        (1.125, 0x3C, 0x3C),
        (1.375, 0x3E, 0x3E),
        (57344.0, 0x7B, 0x7B),
        (-57344.0, 0xFB, 0xFB),
        (61439.996, 0x7B, 0x7B),
        (61440.0, 0x7B, 0x7C),
        (-61440.0, 0xFB, 0xFC),
        (1e6, 0x7B, 0x7C),
        (f32::INFINITY, 0x7B, 0x7C),
        (f32::NEG_INFINITY, 0xFB, 0xFC),
        (p(-14), 0x04, 0x04),
        (p(-16), 0x01, 0x01),
        (p(-17), 0x00, 0x00),
        (-p(-17), 0x80, 0x80),
        (1.5 * p(-16), 0x02, 0x02),
        (3.5 * p(-16), 0x04, 0x04),
        (f32::from_bits(1), 0x00, 0x00),
    ];
    for &(x, sat, nosat) in vectors {
        assert_eq!(f32_to_e5m2_satfinite(x), sat, "satfinite({x:e})");
        assert_eq!(f32_to_e5m2_nosat(x), nosat, "nosat({x:e})");
    }
}

#[test]
fn nan_inputs() {
    let nans = [
        0x7FC0_0000u32,
        0x7F80_0001,
        0x7FBF_FFFF,
        0x7FFF_FFFF,
        0xFFC0_0000,
        0xFF80_0001,
        0xFFFF_FFFF,
    ];
    for bits in nans {
        let x = f32::from_bits(bits);
        let neg = bits >> 31 != 0;
        assert_eq!(f32_to_bf16(x), 0x7FC0);
        assert_eq!(f32_to_f16(x), if neg { 0xFE00 } else { 0x7E00 });
        assert_eq!(f32_to_e4m3_satfinite(x), 0x7F);
        assert_eq!(f32_to_e4m3_nosat(x), if neg { 0xFF } else { 0x7F });
        assert_eq!(f32_to_e5m2_satfinite(x), 0x7F);
        assert_eq!(f32_to_e5m2_nosat(x), if neg { 0xFF } else { 0x7F });
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips: encode(decode(code)) == code for every non-NaN code.

#[test]
fn fp8_round_trips() {
    for b in 0..=255u8 {
        let x = e4m3_to_f32(b);
        if !x.is_nan() {
            assert_eq!(f32_to_e4m3_satfinite(x), b, "e4m3 sat {b:#04x}");
            assert_eq!(f32_to_e4m3_nosat(x), b, "e4m3 nosat {b:#04x}");
        }
        let y = e5m2_to_f32(b);
        if !y.is_nan() {
            assert_eq!(f32_to_e5m2_nosat(y), b, "e5m2 nosat {b:#04x}");
            if y.is_finite() {
                assert_eq!(f32_to_e5m2_satfinite(y), b, "e5m2 sat {b:#04x}");
            }
        }
    }
}

#[test]
fn f16_and_bf16_round_trips() {
    for h in 0..=u16::MAX {
        let x = f16_to_f32(h);
        if !x.is_nan() {
            assert_eq!(f32_to_f16(x), h, "f16 {h:#06x}");
        }
        let y = bf16_to_f32(h);
        if !y.is_nan() {
            assert_eq!(f32_to_bf16(y), h, "bf16 {h:#06x}");
            assert_eq!(round_to_bf16(y).to_bits(), y.to_bits());
        }
    }
}

/// Every e4m3fn and e5m2 value is exactly an f16 value (e5m2 is literally the top byte of an
/// f16), which ties the three decoders together.
#[test]
fn fp8_values_embed_exactly_in_f16() {
    for b in 0..=255u8 {
        let x = e5m2_to_f32(b);
        if !x.is_nan() {
            assert_eq!(
                f32_to_f16(x),
                (b as u16) << 8,
                "e5m2 {b:#04x} is the top byte of an f16"
            );
        }
        let y = e4m3_to_f32(b);
        if !y.is_nan() {
            assert_eq!(
                f16_to_f32(f32_to_f16(y)),
                y,
                "e4m3 {b:#04x} is an f16 value"
            );
        }
    }
}
