//! Sampling cases.

use concord_core::DType;
use concord_ops::*;

use super::{act, case, Fill, OpCase, OutputSpec, Patch};

pub(super) fn sample(c: &mut Vec<OpCase>) {
    // 1e-38 and 1e-6 are below Sample::GREEDY_BELOW: greedy by rule (logits/T would overflow).
    let settings = [
        (0.0, 0, 1.0),
        (0.8, 0, 0.9),
        (1.3, 40, 0.5),
        (1e-38, 0, 1.0),
        (1e-6, 5, 0.9),
    ];
    for (b, v, valid) in [(4usize, 50usize, 45usize), (1, 3000, 2999)] {
        for (temperature, top_k, top_p) in settings {
            // Row 1: ties, −∞ and NaN logits; row 2: every logit NaN; row 3: large negative.
            let mut logits = act(DType::F32, &[b, v], Fill::Uniform(6.0));
            if b > 3 {
                logits = logits
                    .patch(Patch::Set(v..v + v / 3, 2.5))
                    .patch(Patch::Set(v + v / 3..v + v / 3 + 1, f32::NEG_INFINITY))
                    .patch(Patch::Set(v + v / 3 + 1..v + v / 3 + 2, f32::NAN))
                    .patch(Patch::Set(2 * v..3 * v, f32::NAN))
                    .patch(Patch::Scale(3 * v..4 * v, 1e4))
                    .patch(Patch::Set(3 * v..3 * v + 2, -3.0e38));
            }
            c.push(case(
                format!("sample/b{b}.v{v}.valid{valid}/f32/t{temperature}.k{top_k}.p{top_p}"),
                Sample {
                    temperature,
                    top_k,
                    top_p,
                    min_p: 0.0,
                    valid_vocab: valid,
                },
                DType::F32,
                vec![
                    logits,
                    act(
                        DType::F32,
                        &[b],
                        Fill::Positive {
                            scale: 1.0,
                            floor: 0.0,
                        },
                    ),
                ],
                vec![OutputSpec::new(DType::U32, &[b])],
            ));
        }
    }
}
