//! Sampling cases.

use concord_core::DType;
use concord_ops::*;

use super::{act, case, Fill, InputSpec, OpCase, OutputSpec, Patch};

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
    // min-p with and without top-k/top-p, and with greedy (which ignores it).
    for (temperature, top_k, top_p, min_p) in [
        (1.0, 0, 1.0, 0.05),
        (0.7, 0, 0.9, 0.2),
        (1.3, 10, 1.0, 0.01),
        (2.0, 0, 1.0, 1.0),
        (0.0, 0, 1.0, 0.5),
    ] {
        let (b, v) = (3usize, 500usize);
        c.push(case(
            format!("sample/b{b}.v{v}/f32/t{temperature}.k{top_k}.p{top_p}.min_p{min_p}"),
            Sample {
                temperature,
                top_k,
                top_p,
                min_p,
                valid_vocab: v,
            },
            DType::F32,
            vec![
                act(DType::F32, &[b, v], Fill::Uniform(6.0))
                    .patch(Patch::Set(v..v + 40, 2.5))
                    .patch(Patch::Set(v + 40..v + 41, f32::NAN)),
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

/// The penalties: a few hundred logits (with ±0, NaN and −∞), lists of `(id, count,
/// in_prompt)` with padding ids, neutral and extreme settings.
pub(super) fn penalize(c: &mut Vec<OpCase>) {
    let (b, v, k) = (3usize, 300usize, 8usize);
    // Row 0 names the special logits (ids 0..4 set below); row 2 is all padding but one.
    let seen: Vec<u32> = [
        [0, 2, 1],
        [1, 0, 1],
        [2, 3, 0],
        [3, 1, 1],
        [17, 65, 0],
        [299, 1, 0],
        [300, 4, 1],
        [u32::MAX, 1, 1],
        [5, 1, 0],
        [9, 0, 1],
        [100, 7, 1],
        [101, 1, 0],
        [150, 0, 0],
        [250, 12, 0],
        [251, 1, 1],
        [252, 2, 0],
        [u32::MAX, 0, 0],
        [u32::MAX, 1, 0],
        [u32::MAX, 3, 1],
        [42, 5, 1],
        [u32::MAX, 0, 1],
        [1000, 1, 1],
        [u32::MAX, 2, 0],
        [u32::MAX, 0, 0],
    ]
    .concat();
    for (repetition, frequency, presence) in [
        (1.0, 0.0, 0.0),
        (1.3, 0.0, 0.0),
        (1.0, 0.5, 0.0),
        (1.0, 0.0, -0.7),
        (0.8, 1.9, 2.0),
        (1.1, -2.0, 0.3),
    ] {
        c.push(case(
            format!("penalize/b{b}.v{v}.k{k}/f32/r{repetition}.f{frequency}.p{presence}"),
            Penalize {
                repetition,
                frequency,
                presence,
            },
            DType::F32,
            vec![
                act(DType::F32, &[b, v], Fill::Uniform(6.0))
                    .patch(Patch::Set(0..1, 0.0))
                    .patch(Patch::Set(1..2, -0.0))
                    .patch(Patch::Set(2..3, f32::NAN))
                    .patch(Patch::Set(3..4, f32::NEG_INFINITY)),
                InputSpec::new(DType::U32, &[b, k, 3], Fill::U32s(seen.clone())),
            ],
            vec![OutputSpec::new(DType::F32, &[b, v])],
        ));
    }
}
