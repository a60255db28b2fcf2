//! Attention cases: RoPE, MLA prefill and MLA decode.

use concord_core::DType;
use concord_ops::*;

use super::{act, case, short, Fill, InputSpec, OpCase, OutputSpec, ACTS};

pub(super) fn rope(c: &mut Vec<OpCase>) {
    for (t, h, w, offset, dim, p) in [(1, 1, 64, 0, 64, 4), (5, 3, 192, 128, 64, 40)] {
        for a in ACTS {
            c.push(case(
                format!("rope/t{t}.h{h}.w{w}.at{offset}.d{dim}/{}", short(a)),
                Rope {
                    offset,
                    dim,
                    out: a,
                },
                a,
                vec![
                    act(
                        a,
                        &[t, h, w],
                        Fill::Extremes {
                            scale: 3.0,
                            every: 60,
                        },
                    ),
                    act(DType::F32, &[p, dim / 2], Fill::Uniform(1.0)),
                    act(DType::F32, &[p, dim / 2], Fill::Uniform(1.0)),
                    InputSpec::new(DType::U32, &[t], Fill::Ids(p as u32)),
                ],
                vec![OutputSpec::new(a, &[t, h, dim])],
            ));
        }
    }
}

pub(super) fn mla_prefill(c: &mut Vec<OpCase>) {
    // (T, N, Dn, Dr, Dv, S, positions, scale, variant)
    type Shape = (
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        Vec<u32>,
        f32,
        &'static str,
    );
    let shapes: [Shape; 3] = [
        (4, 3, 128, 64, 128, 7, vec![3, 4, 5, 6], 0.1352, ""),
        (3, 2, 130, 6, 3, 200, vec![7, 150, 4000], 0.1352, ""),
        (
            3,
            2,
            20,
            8,
            16,
            9,
            vec![2, 5, 8],
            90.0,
            "/large-negative-logits",
        ),
    ];
    for (t, n, dn, dr, dv, s, pos, scale, variant) in shapes {
        for a in ACTS {
            c.push(case(
                format!(
                    "mla_prefill/t{t}.n{n}.dn{dn}.dr{dr}.dv{dv}.s{s}/{}{variant}",
                    short(a)
                ),
                MlaPrefill {
                    nope_dim: dn,
                    scale,
                    out: a,
                },
                a,
                vec![
                    act(a, &[t, n, dn + dr], Fill::Uniform(1.0)),
                    act(a, &[t, n, dr], Fill::Uniform(1.0)),
                    act(a, &[s, n, dn + dv], Fill::Uniform(1.0)),
                    act(a, &[s, dr], Fill::Uniform(1.0)),
                    InputSpec::new(DType::U32, &[t], Fill::U32s(pos.clone())),
                ],
                vec![OutputSpec::new(a, &[t, n, dv])],
            ));
        }
    }
}

pub(super) fn mla_decode(c: &mut Vec<OpCase>) {
    // (T, N, Dn, Dr, Dv, R, S, positions, scale, variant)
    type Shape = (
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        Vec<u32>,
        f32,
        &'static str,
    );
    let shapes: [Shape; 3] = [
        (1, 4, 128, 64, 128, 512, 33, vec![32], 0.0721, ""),
        (3, 2, 17, 4, 9, 200, 140, vec![139, 7, 1000], 0.0721, ""),
        (
            1,
            2,
            16,
            8,
            8,
            64,
            20,
            vec![19],
            60.0,
            "/large-negative-logits",
        ),
    ];
    for (t, n, dn, dr, dv, r, s, pos, scale, variant) in shapes {
        for a in ACTS {
            for w in ACTS {
                c.push(case(
                    format!(
                        "mla_decode/t{t}.n{n}.dn{dn}.dr{dr}.dv{dv}.r{r}.s{s}/{}.{}{variant}",
                        short(a),
                        short(w)
                    ),
                    MlaDecode {
                        nope_dim: dn,
                        v_dim: dv,
                        scale,
                        out: a,
                    },
                    a,
                    vec![
                        act(a, &[t, n, dn + dr], Fill::Uniform(1.0)),
                        act(a, &[t, n, dr], Fill::Uniform(1.0)),
                        act(w, &[n * (dn + dv), r], Fill::Uniform(0.2)),
                        act(a, &[s, r], Fill::Uniform(1.0)),
                        act(a, &[s, dr], Fill::Uniform(1.0)),
                        InputSpec::new(DType::U32, &[t], Fill::U32s(pos.clone())),
                    ],
                    vec![OutputSpec::new(a, &[t, n, dv])],
                ));
            }
        }
    }
}
