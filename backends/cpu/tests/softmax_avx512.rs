//! The AVX-512F exp and softmax against the contract's definitions
//! (`concord_core::numerics::math::{exp, softmax_in_place}`, docs/numerics.md §5.1, §5.3),
//! bit for bit: exp over a dense sweep of f32 bit patterns and its edge cases, softmax over
//! random rows of many lengths and the rows with −∞, +∞ and NaN.
mod common;

use common::skip_without_avx512f;
use concord_backend_cpu::testing::{exp_avx512, softmax, softmax_avx512};
use concord_core::numerics::math;

/// Inputs per kernel call in the sweeps: long enough to be quick, ending in a partial register
/// so the tail path is swept too.
const BATCH: usize = 4093;

/// Compares the kernel's exp with `math::exp` on `xs`; returns the first mismatch.
fn exp_mismatch(xs: &[f32]) -> Option<(f32, u32, u32)> {
    let mut got = xs.to_vec();
    assert!(exp_avx512(&mut got), "AVX-512F was detected");
    xs.iter()
        .zip(&got)
        .map(|(x, g)| (*x, math::exp(*x).to_bits(), g.to_bits()))
        .find(|(_, want, got)| want != got)
}

/// Sweeps the bit patterns `start, start + stride, …` up to `end` (inclusive).
fn sweep(start: u32, end: u32, stride: u32) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut bits = u64::from(start);
    while bits <= u64::from(end) {
        batch.push(f32::from_bits(bits as u32));
        if batch.len() == BATCH {
            if let Some((x, want, got)) = exp_mismatch(&batch) {
                panic!(
                    "exp({x:e} = {:#010x}): want {want:#010x}, got {got:#010x}",
                    x.to_bits()
                );
            }
            batch.clear();
        }
        bits += u64::from(stride);
    }
    if let Some((x, want, got)) = exp_mismatch(&batch) {
        panic!(
            "exp({x:e} = {:#010x}): want {want:#010x}, got {got:#010x}",
            x.to_bits()
        );
    }
}

#[test]
fn exp_equals_the_contract_on_every_61st_bit_pattern() {
    if skip_without_avx512f() {
        return;
    }
    sweep(0, u32::MAX, 61);
    sweep(30, u32::MAX, 61);
}

#[test]
fn exp_equals_the_contract_densely_where_results_are_finite_and_nonzero() {
    if skip_without_avx512f() {
        return;
    }
    // [+0, 90] and [−0, −105]: every result between the underflow and overflow thresholds,
    // the subnormal results included.
    sweep(0, 90.0f32.to_bits(), 5);
    sweep((-0.0f32).to_bits(), (-105.0f32).to_bits(), 5);
    // Every pattern where results are subnormal or about to overflow.
    sweep((-87.0f32).to_bits(), (-104.0f32).to_bits(), 1);
    sweep(88.0f32.to_bits(), 89.0f32.to_bits(), 1);
}

#[test]
fn exp_equals_the_contract_on_its_edge_cases() {
    if skip_without_avx512f() {
        return;
    }
    let mut xs = vec![
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7F80_0001),
        f32::from_bits(0xFFC1_2345),
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x8000_0001),
        1.0,
        -1.0,
    ];
    for t in [
        math::EXP_OVERFLOW_X,
        math::EXP_UNDERFLOW_X,
        88.0,
        -87.33655,
        -88.0,
        -100.0,
        -103.0,
        -103.27893,
    ] {
        for d in -40i32..=40 {
            xs.push(f32::from_bits(t.to_bits().wrapping_add_signed(d)));
        }
    }
    for len in [0, 1, 15, 16, 17, xs.len()] {
        let mut got = xs[..len].to_vec();
        assert!(exp_avx512(&mut got));
        for (x, g) in xs.iter().zip(&got) {
            assert_eq!(
                g.to_bits(),
                math::exp(*x).to_bits(),
                "exp({x:e} = {:#010x})",
                x.to_bits()
            );
        }
    }
    // The results the thresholds promise.
    let mut t = [
        math::EXP_OVERFLOW_X,
        f32::from_bits(math::EXP_UNDERFLOW_X.to_bits() + 1),
    ];
    assert!(exp_avx512(&mut t));
    assert_eq!(t[0], f32::INFINITY);
    assert_eq!(t[1], 0.0);
}

/// SplitMix64: the rows' random values (an independent, fixed stream).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [−spread, spread).
    fn uniform(&mut self, spread: f32) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * u - 1.0) * spread
    }
}

/// Softmax of `row` on the AVX-512F kernel and through the ops' dispatching entry, each
/// against the contract, bit for bit.
fn check_row(row: &[f32], what: &str) {
    let mut want = row.to_vec();
    math::softmax_in_place(&mut want);
    let mut got = row.to_vec();
    assert!(softmax_avx512(&mut got));
    let mut dispatched = row.to_vec();
    softmax(&mut dispatched);
    for (i, ((w, g), d)) in want.iter().zip(&got).zip(&dispatched).enumerate() {
        assert_eq!(
            (g.to_bits(), d.to_bits()),
            (w.to_bits(), w.to_bits()),
            "{what}, length {}: p[{i}] (kernel, dispatched) vs the contract",
            row.len()
        );
    }
}

fn lengths() -> impl Iterator<Item = usize> {
    (0..=300).chain([511, 512, 513, 4095, 4096, 4097])
}

#[test]
fn softmax_equals_the_contract_on_random_rows() {
    if skip_without_avx512f() {
        return;
    }
    let mut rng = Rng(20);
    for len in lengths() {
        for spread in [1.0, 12.0, 60.0, 1e4] {
            let row: Vec<f32> = (0..len).map(|_| rng.uniform(spread)).collect();
            check_row(&row, &format!("uniform ±{spread}"));
        }
        // Tiny values: every exp near 1, the sum's rounding in every lane.
        let row: Vec<f32> = (0..len).map(|_| rng.uniform(1e-30)).collect();
        check_row(&row, "tiny");
        // One dominant entry: the rest underflow, some into subnormal results.
        let mut row: Vec<f32> = (0..len).map(|_| rng.uniform(50.0) - 60.0).collect();
        if len > 0 {
            row[(rng.next() as usize) % len] = 40.0;
        }
        check_row(&row, "dominant");
    }
}

#[test]
fn softmax_equals_the_contract_with_infinities_nan_and_zeros() {
    if skip_without_avx512f() {
        return;
    }
    let mut rng = Rng(14);
    for len in lengths().filter(|l| *l > 0) {
        let base: Vec<f32> = (0..len).map(|_| rng.uniform(8.0)).collect();
        let at = (rng.next() as usize) % len;
        let mut masked = base.clone();
        for (i, v) in masked.iter_mut().enumerate() {
            if i % 3 != 0 {
                *v = f32::NEG_INFINITY;
            }
        }
        check_row(&masked, "−∞ entries");
        check_row(&vec![f32::NEG_INFINITY; len], "all −∞");
        for (special, what) in [
            (f32::NAN, "a NaN"),
            (f32::from_bits(0xFFC0_0123), "a NaN with payload"),
            (f32::INFINITY, "+∞"),
        ] {
            let mut row = base.clone();
            row[at] = special;
            check_row(&row, what);
        }
        // Zero maxima of either sign, ties included.
        let mut zeros: Vec<f32> = base.iter().map(|v| -v.abs() - 1.0).collect();
        zeros[at] = -0.0;
        zeros[len - 1 - at] = 0.0;
        check_row(&zeros, "±0 maxima");
    }
}
