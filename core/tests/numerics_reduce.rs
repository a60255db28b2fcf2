//! The canonical reduction order and max (docs/numerics.md §4).
//!
//! Expected values are either derived by hand in the comments or computed by an independent
//! transcription of the rule written here from the document's text (`reference_sum`).

use concord_core::numerics::reduce::{
    canonical_block_sum, canonical_sum, dot, max, sum, sum_of_squares, REDUCE_BLOCK, REDUCE_LANES,
};

/// 2^24: above it consecutive f32 are 2 apart, so `2^24 + 1` is a tie that rounds to 2^24.
const BIG: f32 = 16_777_216.0;

/// SplitMix64: a small deterministic generator for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A finite f32 with a wide spread of magnitudes (2^-40 .. 2^40), random sign; now and then
    /// ±0 or a subnormal, so that summation order changes the rounded result.
    fn wide(&mut self) -> f32 {
        let r = self.next();
        match r % 64 {
            0 => 0.0,
            1 => -0.0,
            2 => f32::from_bits((r >> 8) as u32 & 0x807F_FFFF), // subnormal
            _ => {
                let exp = 127 - 40 + ((r >> 8) % 81) as u32;
                let man = (r >> 20) as u32 & 0x007F_FFFF;
                let sign = ((r >> 60) as u32 & 1) << 31;
                f32::from_bits(sign | exp << 23 | man)
            }
        }
    }

    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.wide()).collect()
    }
}

/// The rule of docs/numerics.md §4 transcribed independently of the crate: blocks of 128; in a
/// block, term i goes to lane i mod 16 in increasing i; lanes halve 16 → 8 → 4 → 2 → 1 with
/// lane[j] += lane[j + width]; block totals added in order to +0.0.
fn reference_sum(t: &[f32]) -> f32 {
    let mut total = 0.0f32;
    for block in t.chunks(128) {
        let mut lanes = [0.0f32; 16];
        for (i, &v) in block.iter().enumerate() {
            lanes[i % 16] += v;
        }
        let mut width = 16;
        while width > 1 {
            width /= 2;
            for j in 0..width {
                lanes[j] += lanes[j + width];
            }
        }
        total += lanes[0];
    }
    total
}

/// Bit equality, except that any NaN equals any NaN (payloads are not part of the contract).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn naive_left_to_right(t: &[f32]) -> f32 {
    t.iter().fold(0.0f32, |acc, &v| acc + v)
}

#[test]
fn reduction_constants() {
    assert_eq!(REDUCE_BLOCK, 128);
    assert_eq!(REDUCE_LANES, 16);
}

#[test]
fn reduction_order_matches_definition_for_all_lengths_0_to_1100() {
    let mut rng = Rng(1);
    for n in 0..=1100 {
        let a = rng.vec(n);
        let b = rng.vec(n);
        let products: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
        let squares: Vec<f32> = a.iter().map(|x| x * x).collect();
        let want_sum = reference_sum(&a);
        let want_dot = reference_sum(&products);
        let want_sq = reference_sum(&squares);
        let got = canonical_sum(n, |k| a[k]);
        assert!(
            same(got, want_sum),
            "canonical_sum n={n}: {got:e} vs {want_sum:e}"
        );
        assert!(same(sum(&a), want_sum), "sum n={n}");
        assert!(same(dot(&a, &b), want_dot), "dot n={n}");
        assert!(same(sum_of_squares(&a), want_sq), "sum_of_squares n={n}");
        if n <= REDUCE_BLOCK {
            // A single block: the total is +0.0 + block, and the block sum is never −0.0.
            assert!(
                same(canonical_block_sum(n, |k| a[k]), want_sum),
                "block n={n}"
            );
        }
    }
}

#[test]
fn dot_is_bit_identical_to_canonical_sum() {
    let mut rng = Rng(2);
    let specials = [
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN_POSITIVE,
    ];
    for trial in 0..400 {
        let n = (rng.next() % 3000) as usize;
        let mut a = rng.vec(n);
        let mut b = rng.vec(n);
        if trial % 4 == 0 {
            // Sprinkle non-finite and extreme values: overflow, ∞ − ∞ and 0 · ∞.
            for _ in 0..3 {
                if n > 0 {
                    let i = (rng.next() % n as u64) as usize;
                    a[i] = specials[(rng.next() % specials.len() as u64) as usize];
                    let j = (rng.next() % n as u64) as usize;
                    b[j] = specials[(rng.next() % specials.len() as u64) as usize];
                }
            }
        }
        let want = canonical_sum(n, |k| a[k] * b[k]);
        let got = dot(&a, &b);
        assert!(
            same(got, want),
            "n={n}: dot {got:e} vs canonical_sum {want:e}"
        );
        assert!(same(sum(&a), canonical_sum(n, |k| a[k])), "sum n={n}");
        assert!(
            same(sum_of_squares(&a), canonical_sum(n, |k| a[k] * a[k])),
            "sum_of_squares n={n}"
        );
    }
}

#[test]
fn reduction_is_not_sequential_sum() {
    // t = [2^24, 1, 0, 1]. Lanes 0..3 hold 2^24, 1, 0, 1. Tree: s = 8, 4 add zeros; s = 2:
    // lane0 = 2^24 + 0, lane1 = 1 + 1 = 2; s = 1: 2^24 + 2 (exact). Left to right:
    // 2^24 + 1 is a tie that rounds to 2^24 (even), + 0, + 1 again rounds to 2^24.
    let t = [BIG, 1.0, 0.0, 1.0];
    assert_eq!(naive_left_to_right(&t), BIG);
    assert_eq!(canonical_sum(t.len(), |k| t[k]), BIG + 2.0);
    assert_eq!(sum(&t), BIG + 2.0);
    assert_eq!(dot(&t, &[1.0; 4]), BIG + 2.0);
}

#[test]
fn reduction_lane_tree_is_8_4_2_1() {
    // t0 = 2^24, t1 = 1, t9 = 1 (n = 10). s = 8: lane1 = 1 + lane9 = 2; s = 4, 2 add zeros;
    // s = 1: 2^24 + 2. Folding lanes 0, 1, 2, … in order would give 2^24 (each +1 is a tie
    // rounding back to 2^24), as would the adjacent-pairs tree (lane0 + lane1 first).
    let mut t = [0.0f32; 10];
    t[0] = BIG;
    t[1] = 1.0;
    t[9] = 1.0;
    assert_eq!(naive_left_to_right(&t), BIG);
    assert_eq!(canonical_sum(t.len(), |k| t[k]), BIG + 2.0);
    assert_eq!(sum(&t), BIG + 2.0);
}

#[test]
fn reduction_blocks_are_summed_in_order() {
    // t0 = 2^24, t1 = 1, t129 = 1. Block 0: lane0 = 2^24, lane1 = 1, tree 2^24 + 1 → 2^24.
    // Block 1: lane1 = 1. Total (+0 + 2^24) + 1 → 2^24. Sixteen lanes over the whole vector
    // without blocks would put t1 and t129 both in lane 1 (= 2) and give 2^24 + 2.
    let mut t = vec![0.0f32; 130];
    t[0] = BIG;
    t[1] = 1.0;
    t[129] = 1.0;
    assert_eq!(canonical_sum(t.len(), |k| t[k]), BIG);
    assert_eq!(sum(&t), BIG);
    // Block totals 2^24, 1, 1, 1 (t0, t128, t256, t384): in order every +1 is a tie back to
    // 2^24; a pairwise tree over blocks would compute 2^24 + (1 + 1) + … = 2^24 + 2.
    let mut t = vec![0.0f32; 385];
    t[0] = BIG;
    t[128] = 1.0;
    t[256] = 1.0;
    t[384] = 1.0;
    assert_eq!(canonical_sum(t.len(), |k| t[k]), BIG);
    assert_eq!(sum(&t), BIG);
}

#[test]
fn reduction_of_nothing_or_negative_zeros_is_positive_zero() {
    // Every accumulator starts at +0.0 and +0 + −0 = +0 under round-to-nearest.
    assert_eq!(sum(&[]).to_bits(), 0);
    assert_eq!(dot(&[], &[]).to_bits(), 0);
    assert_eq!(canonical_sum(0, |_| unreachable!()).to_bits(), 0);
    let z = [-0.0f32; 300];
    assert_eq!(sum(&z).to_bits(), 0);
    assert_eq!(canonical_sum(z.len(), |k| z[k]).to_bits(), 0);
    assert_eq!(dot(&[-1.0; 3], &[0.0; 3]).to_bits(), 0);
}

#[test]
fn reduction_ignores_zero_padding() {
    // Appending ±0.0 terms never changes the result: an accumulator is never −0.0 (it starts
    // at +0.0 and x + y = −0 needs both −0), v + (±0) = v for every other v (NaN stays NaN),
    // and an all-zero block total is +0.0. Kernels may therefore pad a partial lane, block or
    // key range with zeros.
    let mut rng = Rng(3);
    for n in [0usize, 1, 5, 16, 100, 128, 129, 300, 1000] {
        let t = rng.vec(n);
        let want = canonical_sum(n, |k| t[k]);
        for pad in [1usize, 7, 16, 27, 128, 200] {
            for zero in [0.0f32, -0.0] {
                let mut p = t.clone();
                p.resize(n + pad, zero);
                assert!(same(sum(&p), want), "n={n} pad={pad} zero={zero}");
                assert!(
                    same(canonical_sum(p.len(), |k| p[k]), want),
                    "n={n} pad={pad}"
                );
            }
        }
    }
}

#[test]
#[should_panic]
fn canonical_block_sum_rejects_more_than_one_block() {
    canonical_block_sum(REDUCE_BLOCK + 1, |_| 1.0);
}

#[test]
#[should_panic]
fn dot_rejects_unequal_lengths() {
    dot(&[1.0, 2.0], &[1.0]);
}

#[test]
fn no_fma_in_dot() {
    // Terms i and i + 16 share a lane of one block. Term i = 1 · −(1 + 2^-11). Term i + 16 =
    // (1 + 2^-12)², exactly 1 + 2^-11 + 2^-24, which needs 25 bits: a tie between 1 + 2^-11
    // and 1 + 2^-11 + 2^-23 that rounds to the even 1 + 2^-11. Unfused: the lane becomes
    // −(1 + 2^-11) + (1 + 2^-11) = +0 and the dot is +0.0. A fused multiply-add keeps 2^-24.
    // Placements cover the vectorised chunks and the tail of a partial block.
    let e = 1.0 + f32::powi(2.0, -12);
    let neg = -(1.0 + f32::powi(2.0, -11));
    assert_eq!(
        e.mul_add(e, neg),
        f32::powi(2.0, -24),
        "the input does separate fused from unfused"
    );
    for (n, i) in [
        (17, 0),
        (32, 0),
        (32, 15),
        (128, 100),
        (145, 128),
        (300, 260),
        (300, 271),
    ] {
        let mut a = vec![0.0f32; n];
        let mut b = vec![0.0f32; n];
        a[i] = 1.0;
        b[i] = neg;
        a[i + 16] = e;
        b[i + 16] = e;
        assert_eq!(dot(&a, &b).to_bits(), 0, "n={n} i={i}");
        assert_eq!(
            canonical_sum(n, |k| a[k] * b[k]).to_bits(),
            0,
            "n={n} i={i}"
        );
    }
}

#[test]
fn max_propagates_nan() {
    assert!(max(&[1.0, f32::NAN, 2.0]).is_nan());
    assert!(max(&[f32::NAN, 5.0]).is_nan());
    assert!(max(&[1.0, 2.0, f32::NAN]).is_nan());
    assert!(max(&[f32::NAN, f32::INFINITY]).is_nan());
    assert!(max(&[f32::NEG_INFINITY, -f32::NAN]).is_nan());
}

#[test]
fn max_keeps_first_of_ties_and_starts_at_negative_infinity() {
    assert_eq!(max(&[-0.0, 0.0]).to_bits(), 0x8000_0000);
    assert_eq!(max(&[0.0, -0.0]).to_bits(), 0);
    assert_eq!(max(&[]), f32::NEG_INFINITY);
    assert_eq!(max(&[f32::NEG_INFINITY; 4]), f32::NEG_INFINITY);
    assert_eq!(max(&[-3.0, 7.5, 2.0, 7.5, f32::NEG_INFINITY]), 7.5);
    assert_eq!(max(&[1.0, f32::INFINITY, 3.0]), f32::INFINITY);
}
