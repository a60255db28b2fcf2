//! Block-FP8 cases: activation quantization and block-scaled FP8 matmul.

use concord_core::DType;
use concord_ops::*;

use super::{act, case, short, Fill, InputSpec, OpCase, OutputSpec, Patch, ACTS, EXTREMES};

pub(super) fn fp8_act_quant(c: &mut Vec<OpCase>) {
    for (m, k) in [(1usize, 1usize), (3, 129), (2, 300), (1, 3000)] {
        for a in ACTS {
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
                format!("fp8_act_quant/m{m}.k{k}/{}", short(a)),
                Fp8ActQuant,
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
    c.push(case(
        "fp8_act_quant/m20.k128/f32/every-extreme".into(),
        Fp8ActQuant,
        DType::F32,
        vec![act(DType::F32, &[m, 128], Fill::Values(x))],
        vec![
            OutputSpec::new(DType::F8E4M3, &[m, 128]),
            OutputSpec::new(DType::F32, &[m, 1]),
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
