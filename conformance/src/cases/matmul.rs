//! Dense matmul cases (activations × weights, router logits / lm_head).

use concord_core::DType;
use concord_ops::*;

use super::{act, case, short, Fill, OpCase, OutputSpec, ACTS};

pub(super) fn matmul(c: &mut Vec<OpCase>) {
    for (m, k, n) in [(1, 129, 17), (3, 300, 130), (2, 3000, 5)] {
        for a in ACTS {
            for w in ACTS {
                c.push(case(
                    format!("matmul/m{m}.k{k}.n{n}/{}.{}", short(a), short(w)),
                    Matmul { out: a },
                    w,
                    vec![
                        act(
                            a,
                            &[m, k],
                            Fill::Extremes {
                                scale: 2.0,
                                every: 997,
                            },
                        ),
                        act(w, &[n, k], Fill::Uniform(1.0)),
                    ],
                    vec![OutputSpec::new(a, &[m, n])],
                ));
            }
        }
    }
    // Router logits / lm_head: BF16 activations, f32 out; and ±∞, huge and subnormal inputs.
    c.push(case(
        "matmul/m4.k256.n64/bf16.bf16/f32-out".into(),
        Matmul { out: DType::F32 },
        DType::BF16,
        vec![
            act(DType::BF16, &[4, 256], Fill::Uniform(2.0)),
            act(DType::BF16, &[64, 256], Fill::Uniform(1.0)),
        ],
        vec![OutputSpec::new(DType::F32, &[4, 64])],
    ));
    c.push(case(
        "matmul/m3.k200.n9/f32.f32/extremes".into(),
        Matmul { out: DType::F32 },
        DType::F32,
        vec![
            act(
                DType::F32,
                &[3, 200],
                Fill::Extremes {
                    scale: 2.0,
                    every: 40,
                },
            ),
            act(DType::F32, &[9, 200], Fill::Uniform(1.0)),
        ],
        vec![OutputSpec::new(DType::F32, &[3, 9])],
    ));
}
