//! Element-wise and data-movement cases: embedding, RMSNorm, SwiGLU, add, column slicing, row
//! scattering and row gathering.

use concord_core::DType;
use concord_ops::*;

use super::{act, case, short, Fill, InputSpec, OpCase, OutputSpec, Patch, ACTS};

pub(super) fn embedding(c: &mut Vec<OpCase>) {
    for (v, h, t) in [(37, 129, 5), (11, 3000, 1)] {
        for w in ACTS {
            for out in ACTS {
                c.push(case(
                    format!("embedding/v{v}.h{h}.t{t}/{}.{}", short(out), short(w)),
                    Embedding { out },
                    w,
                    vec![
                        InputSpec::new(DType::U32, &[t], Fill::Ids(v as u32)),
                        act(
                            w,
                            &[v, h],
                            Fill::Extremes {
                                scale: 3.0,
                                every: 50,
                            },
                        ),
                    ],
                    vec![OutputSpec::new(out, &[t, h])],
                ));
            }
        }
    }
}

pub(super) fn rms_norm(c: &mut Vec<OpCase>) {
    for (t, d) in [(1, 7), (3, 129), (2, 3000)] {
        for a in ACTS {
            for w in ACTS {
                // Row 0 all zeros (mean 0 + eps), row 1 subnormal, row 2 huge.
                let mut x = act(a, &[t, d], Fill::Uniform(4.0));
                if t > 1 {
                    x = x.patch(Patch::Set(0..d, 0.0));
                }
                if t > 2 {
                    x = x
                        .patch(Patch::Scale(d..2 * d, 1e-39))
                        .patch(Patch::Scale(2 * d..3 * d, 1e18));
                }
                c.push(case(
                    format!("rms_norm/t{t}.d{d}/{}.{}", short(a), short(w)),
                    RmsNorm { eps: 1e-6, out: a },
                    a,
                    vec![x, act(w, &[d], Fill::Uniform(2.0))],
                    vec![OutputSpec::new(a, &[t, d])],
                ));
            }
        }
    }
}

pub(super) fn swiglu(c: &mut Vec<OpCase>) {
    for (t, n) in [(1, 1), (3, 129), (2, 3000)] {
        for a in ACTS {
            c.push(case(
                format!("swiglu/t{t}.i{n}/{}", short(a)),
                Swiglu { out: a },
                a,
                vec![
                    act(
                        a,
                        &[t, n],
                        Fill::Extremes {
                            scale: 100.0,
                            every: 8,
                        },
                    ),
                    act(
                        a,
                        &[t, n],
                        Fill::Extremes {
                            scale: 100.0,
                            every: 8,
                        },
                    ),
                ],
                vec![OutputSpec::new(a, &[t, n])],
            ));
        }
    }
    // silu's exp(−g) across overflow, underflow and subnormal results; ±∞ (silu(−∞) = NaN).
    let g: Vec<f32> = (0..512)
        .map(|i| -110.0 + i as f32 * 0.43)
        .chain([
            -88.72284,
            -88.72283,
            103.97,
            104.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
        ])
        .collect();
    let n = g.len();
    c.push(case(
        format!("swiglu/t1.i{n}/f32/exp-thresholds"),
        Swiglu { out: DType::F32 },
        DType::F32,
        vec![
            act(DType::F32, &[1, n], Fill::Values(g)),
            act(
                DType::F32,
                &[1, n],
                Fill::Positive {
                    scale: 0.5,
                    floor: 1.0,
                },
            ),
        ],
        vec![OutputSpec::new(DType::F32, &[1, n])],
    ));
}

pub(super) fn add(c: &mut Vec<OpCase>) {
    for (t, n) in [(1, 1), (3, 129), (2, 3000)] {
        for a in ACTS {
            c.push(case(
                format!("add/t{t}.h{n}/{}", short(a)),
                Add { out: a },
                a,
                vec![
                    act(
                        a,
                        &[t, n],
                        Fill::Extremes {
                            scale: 100.0,
                            every: 8,
                        },
                    ),
                    act(
                        a,
                        &[t, n],
                        Fill::Extremes {
                            scale: 100.0,
                            every: 8,
                        },
                    ),
                ],
                vec![OutputSpec::new(a, &[t, n])],
            ));
        }
    }
}

pub(super) fn slice_columns(c: &mut Vec<OpCase>) {
    for (t, n, start, len) in [(3, 10, 2, 5), (1, 3000, 512, 2488)] {
        for d in [DType::F32, DType::BF16, DType::F8E4M3, DType::U32] {
            let fill = match d {
                DType::F8E4M3 => Fill::E4m3,
                DType::U32 => Fill::Ids(1 << 30),
                _ => Fill::Uniform(5.0),
            };
            c.push(case(
                format!("slice_columns/t{t}.c{n}.at{start}.len{len}/{}", short(d)),
                SliceColumns { start, len },
                d,
                vec![InputSpec::new(d, &[t, n], fill)],
                vec![OutputSpec::new(d, &[t, len])],
            ));
        }
    }
}

pub(super) fn scatter_rows(c: &mut Vec<OpCase>) {
    let shapes: [(usize, usize, usize, Vec<u32>); 2] =
        [(3, 5, 6, vec![4, 1, 4]), (4, 3000, 5, vec![0, 1, 2, 0])];
    for (t, n, s, slots) in shapes {
        for d in ACTS {
            c.push(case(
                format!("scatter_rows/t{t}.c{n}.s{s}/{}", short(d)),
                ScatterRows,
                d,
                vec![
                    act(d, &[t, n], Fill::Uniform(2.0)),
                    InputSpec::new(DType::U32, &[t], Fill::U32s(slots.clone())),
                ],
                vec![OutputSpec {
                    desc: TensorDesc::new(d, [s, n]),
                    init: Some(act(d, &[s, n], Fill::Uniform(9.0))),
                }],
            ));
        }
    }
}

pub(super) fn gather_rows(c: &mut Vec<OpCase>) {
    // (S, C, rows): repeated, reversed and skipped rows out of a larger pool (a paged cache's
    // blocks), and long rows.
    let shapes: [(usize, usize, Vec<u32>); 2] = [
        (9, 5, vec![8, 2, 2, 0, 5]),
        (6, 3000, vec![5, 4, 3, 2, 1, 0, 3]),
    ];
    for (s, n, rows) in shapes {
        let t = rows.len();
        for d in [DType::F32, DType::BF16, DType::F8E4M3, DType::U8] {
            let fill = match d {
                DType::F8E4M3 => Fill::E4m3,
                DType::U8 => Fill::Bytes,
                _ => Fill::Extremes {
                    scale: 4.0,
                    every: 9,
                },
            };
            c.push(case(
                format!("gather_rows/s{s}.c{n}.t{t}/{}", short(d)),
                GatherRows,
                d,
                vec![
                    InputSpec::new(d, &[s, n], fill),
                    InputSpec::new(DType::U32, &[t], Fill::U32s(rows.clone())),
                ],
                vec![OutputSpec::new(d, &[t, n])],
            ));
        }
    }
}
