//! Mixture-of-experts cases: routing and the expert MLPs.

use concord_core::DType;
use concord_ops::*;

use super::fp8::SCALE_FORMATS;
use super::{act, case, short, Fill, InputSpec, OpCase, OutputSpec, Patch, ACTS};

pub(super) fn moe_route(c: &mut Vec<OpCase>) {
    let route = |scoring, method, n_group, topk_group, top_k, norm, factor| MoeRoute {
        scoring,
        method,
        n_group,
        topk_group,
        top_k,
        norm_topk_prob: norm,
        routed_scaling_factor: factor,
    };
    use RouterMethod::*;
    use RouterScoring::*;
    let ops = [
        ("noaux_tc", 16, route(Sigmoid, NoauxTc, 4, 2, 4, true, 2.5)),
        ("noaux_tc", 256, route(Sigmoid, NoauxTc, 8, 4, 8, true, 2.5)),
        (
            "greedy-softmax",
            10,
            route(Softmax, Greedy, 1, 1, 3, false, 1.0),
        ),
        (
            "group_limited",
            12,
            route(Softmax, GroupLimitedGreedy, 3, 2, 5, true, 16.0),
        ),
    ];
    for (what, e, op) in ops {
        for t in [1usize, 5] {
            // Token 1: half the experts tied, one NaN logit; token 2: every logit equal.
            let mut logits = act(DType::F32, &[t, e], Fill::Uniform(4.0));
            if t > 2 {
                logits = logits
                    .patch(Patch::Set(e..e + e / 2, 0.5))
                    .patch(Patch::Set(2 * e - 1..2 * e, f32::NAN))
                    .patch(Patch::Set(2 * e..3 * e, -1.0));
            }
            let mut inputs = vec![logits];
            if op.method == NoauxTc {
                inputs.push(act(DType::F32, &[e], Fill::Uniform(0.1)));
            }
            c.push(case(
                format!("moe_route/t{t}.e{e}.k{}/f32/{what}", op.top_k),
                op.clone(),
                DType::F32,
                inputs,
                vec![
                    OutputSpec::new(DType::U32, &[t, op.top_k]),
                    OutputSpec::new(DType::F32, &[t, op.top_k]),
                ],
            ));
        }
    }
    // Equal router scores everywhere, zero bias: ties are broken to the lower index.
    let (t, e) = (3, 16);
    c.push(case(
        "moe_route/t3.e16.k4/f32/all-equal-ties".into(),
        route(Sigmoid, NoauxTc, 4, 2, 4, true, 2.5),
        DType::F32,
        vec![
            act(DType::F32, &[t, e], Fill::Values(vec![0.25; t * e])),
            act(DType::F32, &[e], Fill::Values(vec![0.0; e])),
        ],
        vec![
            OutputSpec::new(DType::U32, &[t, 4]),
            OutputSpec::new(DType::F32, &[t, 4]),
        ],
    ));
}

pub(super) fn moe_experts(c: &mut Vec<OpCase>) {
    for (t, h, i, e, k) in [(3, 20, 12, 4, 2), (1, 130, 129, 3, 3)] {
        for a in ACTS {
            for w in ACTS {
                c.push(case(
                    format!(
                        "moe_experts/t{t}.h{h}.i{i}.e{e}.k{k}/{}.{}",
                        short(a),
                        short(w)
                    ),
                    MoeExperts {
                        weights: ExpertWeights::Dense,
                        out: a,
                    },
                    w,
                    vec![
                        act(a, &[t, h], Fill::Uniform(2.0)),
                        InputSpec::new(DType::U32, &[t, k], Fill::Ids(e as u32)),
                        act(
                            DType::F32,
                            &[t, k],
                            Fill::Positive {
                                scale: 1.0,
                                floor: 0.0,
                            },
                        ),
                        act(w, &[e, i, h], Fill::Uniform(0.3)),
                        act(w, &[e, i, h], Fill::Uniform(0.3)),
                        act(w, &[e, h, i], Fill::Uniform(0.3)),
                    ],
                    vec![OutputSpec::new(a, &[t, h])],
                ));
            }
        }
    }
    for (t, h, i, e, k, bn) in [
        (2usize, 200usize, 130usize, 3usize, 2usize, 128usize),
        (4, 300, 257, 4, 3, 64),
    ] {
        for (a, (scale_fmt, suffix)) in ACTS.into_iter().flat_map(|a| SCALE_FORMATS.map(|f| (a, f)))
        {
            let scales = |rows: usize, cols: usize| {
                act(
                    DType::F32,
                    &[e, rows.div_ceil(bn), cols.div_ceil(128)],
                    Fill::Positive {
                        scale: 0.01,
                        floor: 0.0,
                    },
                )
            };
            c.push(case(
                format!(
                    "moe_experts/t{t}.h{h}.i{i}.e{e}.k{k}.bn{bn}/{}.e4m3{suffix}",
                    short(a)
                ),
                MoeExperts {
                    weights: ExpertWeights::BlockFp8 {
                        block: [bn, 128],
                        scale_fmt,
                    },
                    out: a,
                },
                DType::F8E4M3,
                vec![
                    act(
                        a,
                        &[t, h],
                        Fill::Extremes {
                            scale: 3.0,
                            every: 40,
                        },
                    ),
                    InputSpec::new(DType::U32, &[t, k], Fill::Ids(e as u32)),
                    act(
                        DType::F32,
                        &[t, k],
                        Fill::Positive {
                            scale: 1.0,
                            floor: 0.0,
                        },
                    ),
                    InputSpec::new(DType::F8E4M3, &[e, i, h], Fill::E4m3),
                    scales(i, h),
                    InputSpec::new(DType::F8E4M3, &[e, i, h], Fill::E4m3),
                    scales(i, h),
                    InputSpec::new(DType::F8E4M3, &[e, h, i], Fill::E4m3),
                    scales(h, i),
                ],
                vec![OutputSpec::new(a, &[t, h])],
            ));
        }
    }
}
