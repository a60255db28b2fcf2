//! Philox4x32-10 and the sampling stream (docs/numerics.md §8).

use concord_core::numerics::philox::{
    philox4x32, philox4x32_10, sampling_uniform, uniform_f32, SAMPLING_DOMAIN,
};

/// Random123's `kat_vectors` for philox4x32 (counter words, key words, expected output), as
/// reproduced in DEShawResearch/Random123-Boost `libs/random/test/test_philox.cpp`.
const KAT_10: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0, 0, 0, 0],
        [0, 0],
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ),
    (
        [0xffffffff; 4],
        [0xffffffff; 2],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

/// The same file's 7-round vectors: they pin the key schedule (one bump per round after the
/// first) independently of the round count.
const KAT_7: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0, 0, 0, 0],
        [0, 0],
        [0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48],
    ),
    (
        [0xffffffff; 4],
        [0xffffffff; 2],
        [0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a],
    ),
];

#[test]
fn philox_known_answers() {
    for (ctr, key, want) in KAT_10 {
        assert_eq!(
            philox4x32_10(ctr, key),
            want,
            "ctr {ctr:08x?} key {key:08x?}"
        );
        assert_eq!(philox4x32(ctr, key, 10), want);
    }
    for (ctr, key, want) in KAT_7 {
        assert_eq!(
            philox4x32(ctr, key, 7),
            want,
            "7 rounds, ctr {ctr:08x?} key {key:08x?}"
        );
    }
}

#[test]
fn uniform_f32_is_top_24_bits_times_2_pow_minus_24() {
    assert_eq!(uniform_f32(0), 0.0);
    assert_eq!(uniform_f32(0xFF), 0.0, "the low 8 bits are dropped");
    assert_eq!(uniform_f32(0x8000_0000), 0.5);
    assert_eq!(uniform_f32(0x0000_0100), f32::powi(2.0, -24));
    assert_eq!(uniform_f32(u32::MAX), 1.0 - f32::powi(2.0, -24));
    // 0x6627e8d5 → 0x6627e8 / 2^24 = 6694888 / 16777216 (exact in f32).
    assert_eq!(uniform_f32(0x6627_e8d5) as f64, 6_694_888.0 / 16_777_216.0);
}

#[test]
fn sampling_uniform_in_unit_interval() {
    let mut seen_low = false;
    let mut seen_high = false;
    for seed in [0u64, 1, 42, 0xDEAD_BEEF_0BAD_F00D, u64::MAX] {
        for step in (0..2000u64).chain([u32::MAX as u64, 1 << 32, u64::MAX]) {
            for sequence in [0u32, 1, 7, u32::MAX] {
                let u = sampling_uniform(seed, step, sequence);
                assert!(
                    (0.0..1.0).contains(&u),
                    "seed {seed} step {step} seq {sequence}: {u}"
                );
                seen_low |= u < 0.01;
                seen_high |= u > 0.99;
            }
        }
    }
    assert!(seen_low && seen_high, "the stream covers the interval");
}

#[test]
fn sampling_stream_layout() {
    // key = [seed lo, seed hi]; counter = [step lo, step hi, sequence, 0x5EED0000]; word 0.
    assert_eq!(SAMPLING_DOMAIN, 0x5EED_0000);
    let seed = 0x0123_4567_89AB_CDEFu64;
    let step = 0x0000_0002_0000_0005u64;
    let got = sampling_uniform(seed, step, 3);
    let words = philox4x32_10(
        [0x0000_0005, 0x0000_0002, 3, 0x5EED_0000],
        [0x89AB_CDEF, 0x0123_4567],
    );
    assert_eq!(got.to_bits(), uniform_f32(words[0]).to_bits());
    // Each field changes the draw.
    assert_ne!(sampling_uniform(seed, step, 4), got);
    assert_ne!(sampling_uniform(seed, step + 1, 3), got);
    assert_ne!(sampling_uniform(seed ^ (1 << 40), step, 3), got);
}
