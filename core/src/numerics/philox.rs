//! Philox4x32-10 counter-based generator (Salmon, Moraes, Dror, Shaw: "Parallel random
//! numbers: as easy as 1, 2, 3", SC 2011; the Random123 reference) and the sampling stream
//! (docs/numerics.md §8 RNG).
//!
//! Integer-only, so every backend reproduces it exactly; a sample's uniform depends only on
//! (seed, step, sequence), never on batch composition or thread count.

/// Round multiplier applied to counter word 0.
pub const PHILOX_M0: u32 = 0xD251_1F53;
/// Round multiplier applied to counter word 2.
pub const PHILOX_M1: u32 = 0xCD9E_8D57;
/// Weyl increment of key word 0 (golden ratio).
pub const PHILOX_W0: u32 = 0x9E37_79B9;
/// Weyl increment of key word 1 (√3 − 1).
pub const PHILOX_W1: u32 = 0xBB67_AE85;
/// Constant in counter word 3 that marks the token-sampling stream.
pub const SAMPLING_DOMAIN: u32 = 0x5EED_0000;

/// High and low 32 bits of the 64-bit product.
#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with `rounds` rounds (Random123's `philox4x32_R`): round i uses the key bumped
/// i times by the Weyl increments. [`philox4x32_10`] is the one the contract uses.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2], rounds: u32) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..rounds {
        if round > 0 {
            k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
        }
        let (hi0, lo0) = mulhilo(PHILOX_M0, c[0]);
        let (hi1, lo1) = mulhilo(PHILOX_M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Philox4x32-10: four random words for a 128-bit counter and a 64-bit key.
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    philox4x32(counter, key, 10)
}

/// Uniform in [0, 1) from one random word: the top 24 bits times 2^−24 (exact; the largest
/// value is 1 − 2^−24).
#[inline]
pub fn uniform_f32(bits: u32) -> f32 {
    const TWO_POW_M24: f32 = 1.0 / 16_777_216.0;
    (bits >> 8) as f32 * TWO_POW_M24
}

/// The sampling uniform of a request with `seed`, at generation `step` (0-based) for sequence
/// index `sequence`: key = [seed lo, seed hi], counter = [step lo, step hi, sequence,
/// 0x5EED_0000]; the first output word through [`uniform_f32`].
pub fn sampling_uniform(seed: u64, step: u64, sequence: u32) -> f32 {
    let key = [seed as u32, (seed >> 32) as u32];
    let counter = [step as u32, (step >> 32) as u32, sequence, SAMPLING_DOMAIN];
    uniform_f32(philox4x32_10(counter, key)[0])
}
