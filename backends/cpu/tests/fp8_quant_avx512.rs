//! The AVX-512F fp8 activation quantization against the contract, bit for bit: the vector
//! e4m3 conversion over every f32 bit pattern against `f32_to_e4m3_satfinite`, and whole
//! fp8_act_quant rows (lengths around the 16-lane register and the 128-column block, NaN,
//! ±∞, −0.0, tiny and huge values, both scale formats) against the definition computed here
//! element by element.
mod common;

use common::*;
use concord_backend_cpu::testing::{e4m3_satfinite_avx512, quantize_row_avx512};
use concord_core::convert::f32_to_e4m3_satfinite;
use concord_ops::{ActScaleFormat, Fp8ActQuant, FP8_ACT_BLOCK};

#[test]
fn e4m3_conversion_equals_the_contract_on_every_f32_bit_pattern() {
    if skip_without_avx512f() {
        return;
    }
    // One batch per value of the top 16 bits: all 2^32 patterns.
    let mut x = vec![0.0f32; 1 << 16];
    let mut got = vec![0u8; 1 << 16];
    for hi in 0..=u16::MAX as u32 {
        for (lo, v) in x.iter_mut().enumerate() {
            *v = f32::from_bits(hi << 16 | lo as u32);
        }
        assert!(e4m3_satfinite_avx512(&x, &mut got));
        for (v, g) in x.iter().zip(&got) {
            let want = f32_to_e4m3_satfinite(*v);
            assert_eq!(
                *g,
                want,
                "e4m3({v:e} = {:#010x}): want {want:#04x}, got {g:#04x}",
                v.to_bits()
            );
        }
    }
}

#[test]
fn e4m3_conversion_of_short_and_ragged_slices() {
    if skip_without_avx512f() {
        return;
    }
    // Lengths around one register, so the partial last register is converted too.
    let mut rng = Rng::new(11);
    for n in [0usize, 1, 7, 15, 16, 17, 31, 33] {
        let x: Vec<f32> = (0..n)
            .map(|_| f32::from_bits(rng.next_u64() as u32))
            .collect();
        let mut got = vec![0xAAu8; n];
        assert!(e4m3_satfinite_avx512(&x, &mut got));
        let want: Vec<u8> = x.iter().map(|v| f32_to_e4m3_satfinite(*v)).collect();
        assert_eq!(got, want, "length {n}");
    }
}

/// The definition of one row's quantization, element by element: codes and scales.
fn reference_row(x: &[f32], scale_fmt: ActScaleFormat) -> (Vec<u8>, Vec<f32>) {
    let mut codes = Vec::with_capacity(x.len());
    let mut scales = Vec::new();
    for block in x.chunks(FP8_ACT_BLOCK) {
        // NaN-propagating amax: the last NaN's magnitude, else the largest |x|.
        let mut amax = 0.0f32;
        for v in block {
            let a = v.abs();
            if a.is_nan() || a > amax {
                amax = a;
            }
        }
        let clamped = if amax < 1e-4 { 1e-4 } else { amax };
        let scale = scale_fmt.apply(clamped / 448.0);
        scales.push(scale);
        codes.extend(block.iter().map(|v| f32_to_e4m3_satfinite(*v / scale)));
    }
    (codes, scales)
}

/// A value of any magnitude the rows meet: ordinary, tiny (f32 subnormal included), huge.
fn any_magnitude(rng: &mut Rng) -> f32 {
    let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
    let v = match rng.below(8) {
        0 => f32::from_bits(rng.below(0x0080_0000) as u32), // f32 subnormal
        1 => rng.uniform(0.0, 1.0) * 1e-30,
        2 => rng.uniform(0.0, 1.0) * 3e38,
        3 => rng.uniform(0.0, 1.0) * 1e-4, // under the amax floor
        4 => 448.0 * rng.uniform(0.9, 1.1),
        _ => rng.uniform(-4.0, 4.0),
    };
    sign * v
}

/// Rows of `n` values: plain ones, ones with ±∞ / −0.0 / ±0.0 / huge values sprinkled in, and
/// ones with a NaN (a different payload and sign each time) in one block.
fn rows(n: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    out.push(rng.vec(n));
    out.push((0..n).map(|_| any_magnitude(rng)).collect());
    let mut specials: Vec<f32> = (0..n).map(|_| any_magnitude(rng)).collect();
    for v in specials.iter_mut() {
        match rng.below(6) {
            0 => *v = -0.0,
            1 => *v = 0.0,
            2 => *v = f32::MAX,
            3 => *v = -f32::MAX,
            _ => {}
        }
    }
    out.push(specials.clone());
    let mut inf = specials.clone();
    inf[rng.below(n)] = if rng.next_u64() & 1 == 0 {
        f32::INFINITY
    } else {
        f32::NEG_INFINITY
    };
    out.push(inf);
    let mut nan = specials;
    let payload = 0x7F80_0001 | (rng.next_u64() as u32 & 0x807F_FFFF);
    nan[rng.below(n)] = f32::from_bits(payload);
    out.push(nan);
    // Only zeros and −0.0: the amax floor sets the scale.
    out.push(
        (0..n)
            .map(|i| if i % 2 == 0 { -0.0 } else { 0.0 })
            .collect(),
    );
    out
}

const LENGTHS: [usize; 9] = [1, 15, 16, 17, 127, 128, 129, 1000, 1040];

#[test]
fn rows_through_the_op_equal_the_definition() {
    // The op dispatches: AVX-512F here, the scalar loop on CPUs without it.
    let be = backend();
    let mut rng = Rng::new(5);
    for scale_fmt in [ActScaleFormat::F32, ActScaleFormat::Ue8m0] {
        for n in LENGTHS {
            let batch = rows(n, &mut rng);
            let m = batch.len();
            let x: Vec<f32> = batch.concat();
            let out = run(&be, Fp8ActQuant { scale_fmt }, &[&f32s(&be, &[m, n], &x)]).unwrap();
            let (codes, scales) = (&out[0].bytes, out[1].f32());
            let kb = n.div_ceil(FP8_ACT_BLOCK);
            for (r, row) in batch.iter().enumerate() {
                let (want_q, want_s) = reference_row(row, scale_fmt);
                let got_s: Vec<u32> = scales[r * kb..(r + 1) * kb]
                    .iter()
                    .map(|s| s.to_bits())
                    .collect();
                let want_s: Vec<u32> = want_s.iter().map(|s| s.to_bits()).collect();
                assert_eq!(got_s, want_s, "{scale_fmt} n={n} row {r}: scales");
                assert_eq!(
                    &codes[r * n..(r + 1) * n],
                    &want_q[..],
                    "{scale_fmt} n={n} row {r}: codes"
                );
            }
        }
    }
}

#[test]
fn rows_through_the_avx512_kernel_equal_the_definition() {
    if skip_without_avx512f() {
        return;
    }
    let mut rng = Rng::new(9);
    for scale_fmt in [ActScaleFormat::F32, ActScaleFormat::Ue8m0] {
        for n in LENGTHS {
            for (r, row) in rows(n, &mut rng).iter().enumerate() {
                let mut q = vec![0xAAu8; n];
                let mut s = vec![-1.0f32; n.div_ceil(FP8_ACT_BLOCK)];
                assert!(quantize_row_avx512(row, &mut q, &mut s, scale_fmt));
                let (want_q, want_s) = reference_row(row, scale_fmt);
                let s: Vec<u32> = s.iter().map(|v| v.to_bits()).collect();
                let want_s: Vec<u32> = want_s.iter().map(|v| v.to_bits()).collect();
                assert_eq!(s, want_s, "{scale_fmt} n={n} row {r}: scales");
                assert_eq!(q, want_q, "{scale_fmt} n={n} row {r}: codes");
            }
        }
    }
}
