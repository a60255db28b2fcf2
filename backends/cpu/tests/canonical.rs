//! The crate's vectorised reduction variants give exactly the bits of
//! `concord_core::numerics::reduce::canonical_sum` over the same terms.
mod common;

use common::Rng;
use concord_backend_cpu::testing;
use concord_core::convert::{bf16_to_f32, f32_to_bf16};
use concord_core::numerics::reduce::{canonical_block_sum, canonical_sum, dot};

const LENGTHS: &[usize] = &[
    0, 1, 5, 15, 16, 17, 100, 127, 128, 129, 200, 255, 256, 300, 577, 1030,
];

/// Values spanning many magnitudes, so that the order of additions shows in the bits.
fn wild(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.uniform(-1.0, 1.0) * 2f32.powi(rng.below(40) as i32 - 20))
        .collect()
}

#[test]
fn dot_f32_is_canonical_sum_of_products() {
    let mut rng = Rng::new(1);
    for &n in LENGTHS {
        let (a, b) = (wild(&mut rng, n), wild(&mut rng, n));
        let want = canonical_sum(n, |k| a[k] * b[k]);
        assert_eq!(
            testing::dot_f32(&a, &b).to_bits(),
            want.to_bits(),
            "n = {n}"
        );
        assert_eq!(dot(&a, &b).to_bits(), want.to_bits(), "core dot, n = {n}");
    }
}

#[test]
fn dot_bf16_is_canonical_sum_of_products() {
    let mut rng = Rng::new(2);
    for &n in LENGTHS {
        let a = wild(&mut rng, n);
        let b: Vec<u16> = wild(&mut rng, n).iter().map(|v| f32_to_bf16(*v)).collect();
        let want = canonical_sum(n, |k| a[k] * bf16_to_f32(b[k]));
        assert_eq!(
            testing::dot_bf16(&a, &b).to_bits(),
            want.to_bits(),
            "n = {n}"
        );
    }
}

#[test]
fn dot_concat_is_one_canonical_dot_over_the_concatenation() {
    let mut rng = Rng::new(3);
    for &(n0, n1) in &[
        (0, 5),
        (5, 0),
        (128, 64),
        (100, 92),
        (16, 200),
        (130, 130),
        (7, 9),
    ] {
        let a = wild(&mut rng, n0 + n1);
        let (b0, b1) = (wild(&mut rng, n0), wild(&mut rng, n1));
        let b: Vec<f32> = b0.iter().chain(&b1).copied().collect();
        let want = canonical_sum(n0 + n1, |k| a[k] * b[k]);
        let got = testing::dot_concat(&a, &b0, &b1);
        assert_eq!(got.to_bits(), want.to_bits(), "{n0} + {n1}");
    }
}

#[test]
fn weighted_rows_is_a_canonical_sum_per_column() {
    let mut rng = Rng::new(4);
    for &n in &[0usize, 1, 17, 128, 129, 300] {
        let w = 37;
        let coef = wild(&mut rng, n);
        let rows = wild(&mut rng, n * w);
        let mut got = vec![f32::NAN; w];
        testing::weighted_rows(&coef, &rows, &mut got);
        for c in 0..w {
            let want = canonical_sum(n, |u| coef[u] * rows[u * w + c]);
            assert_eq!(got[c].to_bits(), want.to_bits(), "n = {n}, column {c}");
        }
    }
}

#[test]
fn negative_zero_terms_give_positive_zero() {
    // Every accumulator starts at +0.0, so a sum of −0.0 terms is +0.0.
    let a = vec![-0.0f32; 20];
    let b = vec![1.0f32; 20];
    assert_eq!(testing::dot_f32(&a, &b).to_bits(), 0);
    assert_eq!(testing::dot_concat(&a, &b[..3], &b[3..]).to_bits(), 0);
}

#[test]
fn block_dot_is_canonical_block_sum() {
    let mut rng = Rng::new(5);
    for n in [0usize, 1, 15, 16, 17, 64, 72, 127, 128] {
        let (a, b) = (wild(&mut rng, n), wild(&mut rng, n));
        let want = canonical_block_sum(n, |k| a[k] * b[k]);
        assert_eq!(
            testing::block_dot(&a, &b).to_bits(),
            want.to_bits(),
            "n = {n}"
        );
    }
}

#[test]
fn dot2_is_two_canonical_dots() {
    let mut rng = Rng::new(6);
    for &n in LENGTHS {
        let (a0, a1) = (wild(&mut rng, n), wild(&mut rng, n));
        let b: Vec<u16> = wild(&mut rng, n).iter().map(|v| f32_to_bf16(*v)).collect();
        let (y0, y1) = testing::dot2(&a0, &a1, &b);
        let w0 = canonical_sum(n, |k| a0[k] * bf16_to_f32(b[k]));
        let w1 = canonical_sum(n, |k| a1[k] * bf16_to_f32(b[k]));
        assert_eq!(
            (y0.to_bits(), y1.to_bits()),
            (w0.to_bits(), w1.to_bits()),
            "n = {n}"
        );
    }
}
