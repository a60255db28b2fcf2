//! Block-FP8 cases: activation quantization and block-scaled FP8 matmul.

use concord_core::DType;
use concord_ops::*;

use super::{act, case, short, Fill, InputSpec, OpCase, OutputSpec, Patch, ACTS, EXTREMES};

/// Both activation scale formats, with the suffix their case names carry (none for plain f32
/// scales, so those names stay as they were).
pub(super) const SCALE_FORMATS: [(ActScaleFormat, &str); 2] =
    [(ActScaleFormat::F32, ""), (ActScaleFormat::Ue8m0, ".ue8m0")];

pub(super) fn fp8_act_quant(c: &mut Vec<OpCase>) {
    for (m, k) in [(1usize, 1usize), (3, 129), (2, 300), (1, 3000)] {
        for (a, (scale_fmt, suffix)) in ACTS.into_iter().flat_map(|a| SCALE_FORMATS.map(|f| (a, f)))
        {
            let mut x = act(
                a,
                &[m, k],
                Fill::Extremes {
                    scale: 500.0,
                    every: 20,
                },
            );
            // A block of zeros (amax below the 1e-4 floor), a block of subnormals, a NaN.
            if k >= 256 {
                x = x
                    .patch(Patch::Set(0..128, 0.0))
                    .patch(Patch::Scale(128..256, 1e-40));
            }
            if m * k > 5 {
                x = x.patch(Patch::Set(m * k - 3..m * k - 2, f32::NAN));
            }
            c.push(case(
                format!("fp8_act_quant/m{m}.k{k}/{}{suffix}", short(a)),
                Fp8ActQuant { scale_fmt },
                a,
                vec![x],
                vec![
                    OutputSpec::new(DType::F8E4M3, &[m, k]),
                    OutputSpec::new(DType::F32, &[m, k.div_ceil(128)]),
                ],
            ));
        }
    }
    // One block per extreme value (amax = that value, ±448 and saturating values included).
    let mut x = Vec::new();
    for e in EXTREMES {
        x.push(e);
        x.extend((1..128).map(|i| e * (i as f32 / 127.0)));
    }
    let m = EXTREMES.len();
    for (scale_fmt, suffix) in SCALE_FORMATS {
        c.push(case(
            format!("fp8_act_quant/m20.k128/f32/every-extreme{suffix}"),
            Fp8ActQuant { scale_fmt },
            DType::F32,
            vec![act(DType::F32, &[m, 128], Fill::Values(x.clone()))],
            vec![
                OutputSpec::new(DType::F8E4M3, &[m, 128]),
                OutputSpec::new(DType::F32, &[m, 1]),
            ],
        ));
    }
    ue8m0_scale_edges(c);
}

/// ue8m0 at the edges of its rounding, one 128-column block per row of a K = 200 row pair (so
/// every second block is a partial one of 72 columns): a block whose scale is exactly a power
/// of two (amax = 448 · 2^j), one just above it (rounds up to the next power), one just below,
/// the 1e-4 floor, an infinite element (s = ∞ stays ∞), a NaN (s stays NaN).
fn ue8m0_scale_edges(c: &mut Vec<OpCase>) {
    let k = 200;
    let amaxes = [
        448.0,
        f32::from_bits(448.0f32.to_bits() + 1),
        f32::from_bits(448.0f32.to_bits() - 1),
        448.0 * 2f32.powi(-10),
        f32::from_bits((448.0 * 2f32.powi(-10)).to_bits() + 1),
        3.0,
        0.0,
        f32::INFINITY,
        f32::NAN,
        -1.0e30,
    ];
    let rows = amaxes.len().div_ceil(2);
    let mut x = vec![0.0f32; rows * k];
    for (b, amax) in amaxes.into_iter().enumerate() {
        let (row, col0) = (b / 2, (b % 2) * 128);
        let len = if b % 2 == 0 { 128 } else { k - 128 };
        let block = &mut x[row * k + col0..row * k + col0 + len];
        for (j, v) in block.iter_mut().enumerate() {
            // Values spread below the block's amax, with both signs.
            let sign = if j % 3 == 0 { -1.0 } else { 1.0 };
            *v = sign * 0.9 * (j as f32 / len as f32) * if amax.is_finite() { amax } else { 5.0 };
        }
        block[len / 2] = amax;
    }
    c.push(case(
        format!("fp8_act_quant/m{rows}.k{k}/f32/ue8m0-scale-edges"),
        Fp8ActQuant {
            scale_fmt: ActScaleFormat::Ue8m0,
        },
        DType::F32,
        vec![act(DType::F32, &[rows, k], Fill::Values(x))],
        vec![
            OutputSpec::new(DType::F8E4M3, &[rows, k]),
            OutputSpec::new(DType::F32, &[rows, 2]),
        ],
    ));
}

pub(super) fn block_fp8_matmul(c: &mut Vec<OpCase>) {
    for (m, k, n, bn) in [
        (2usize, 300usize, 130usize, 128usize),
        (1, 128, 1, 128),
        (5, 1000, 17, 7),
        (1, 3000, 3, 2),
    ] {
        for out in ACTS {
            let kb = k.div_ceil(128);
            let mut xq = InputSpec::new(DType::F8E4M3, &[m, k], Fill::E4m3);
            if m == 5 {
                xq = xq.patch(Patch::Set(3..4, f32::NAN));
            }
            c.push(case(
                format!("block_fp8_matmul/m{m}.k{k}.n{n}.bn{bn}/{}.e4m3", short(out)),
                BlockFp8Matmul {
                    block: [bn, 128],
                    out,
                },
                DType::F8E4M3,
                vec![
                    xq,
                    act(
                        DType::F32,
                        &[m, kb],
                        Fill::Positive {
                            scale: 0.01,
                            floor: 1e-6,
                        },
                    ),
                    InputSpec::new(DType::F8E4M3, &[n, k], Fill::E4m3),
                    act(
                        DType::F32,
                        &[n.div_ceil(bn), kb],
                        Fill::Positive {
                            scale: 0.02,
                            floor: 0.0,
                        },
                    ),
                ],
                vec![OutputSpec::new(out, &[m, n])],
            ));
        }
    }
}
