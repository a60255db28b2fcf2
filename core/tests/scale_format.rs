//! ue8m0 activation scales: a scale rounded up to the nearest power of two (docs/numerics.md §6).

use concord_core::{round_up_to_power_of_two, ActScaleFormat};

#[test]
fn powers_of_two_stay_and_others_round_up() {
    let next_up = |v: f32| f32::from_bits(v.to_bits() + 1);
    let next_down = |v: f32| f32::from_bits(v.to_bits() - 1);
    // (input, expected) from the definition, by hand.
    for (s, want) in [
        (1.0f32, 1.0f32),
        (next_up(1.0), 2.0),
        (next_down(1.0), 1.0),
        (3.0, 4.0),
        (0.75, 1.0),
        (2f32.powi(-22), 2f32.powi(-22)),
        (1e-4 / 448.0, 2f32.powi(-22)),
        (2f32.powi(-126), 2f32.powi(-126)),
        (next_up(2f32.powi(-126)), 2f32.powi(-125)),
        (2f32.powi(127), 2f32.powi(127)),
        // 2^128 is not a finite f32: the largest values round up to +∞.
        (f32::MAX, f32::INFINITY),
        (f32::INFINITY, f32::INFINITY),
    ] {
        assert_eq!(round_up_to_power_of_two(s), want, "{s:e}");
    }
    assert!(round_up_to_power_of_two(f32::NAN).is_nan());
}

#[test]
fn agrees_with_float64_log2_ceiling_on_normal_scales() {
    // Oracle: 2^ceil(log2(s)) in f64, exact for every f32 (a non-power's log2 is ≥ 1.7e-7 away
    // from an integer, far beyond f64's error). A fixed walk over normal f32 bit patterns.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..200_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Exponent fields 1..=253 (normal, and the result stays finite), any mantissa.
        let exponent = 1 + (state >> 40) as u32 % 253;
        let s = f32::from_bits((exponent << 23) | (state as u32 & 0x007F_FFFF));
        let want = 2f64.powf(f64::from(s).log2().ceil()) as f32;
        assert_eq!(round_up_to_power_of_two(s), want, "{s:e}");
    }
}

#[test]
fn the_formats_apply_and_parse() {
    assert_eq!(ActScaleFormat::default(), ActScaleFormat::F32);
    assert_eq!(ActScaleFormat::F32.apply(3.0), 3.0);
    assert_eq!(ActScaleFormat::Ue8m0.apply(3.0), 4.0);
    assert_eq!(ActScaleFormat::parse(None), Some(ActScaleFormat::F32));
    assert_eq!(
        ActScaleFormat::parse(Some("ue8m0")),
        Some(ActScaleFormat::Ue8m0)
    );
    assert_eq!(ActScaleFormat::parse(Some("UE8M0")), None);
    assert_eq!(ActScaleFormat::parse(Some("")), None);
}
