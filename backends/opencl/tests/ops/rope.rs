use concord_core::DType;
use concord_ops::Rope;

use crate::harness::{check, check_error, opencl, Data, Out, Rng, ACTS};

#[test]
fn rope_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(7);
    // (T, H, W, offset, dim, table rows)
    for (t, h, w, offset, dim, p) in [
        (3, 2, 10, 4, 6, 9),
        (1, 1, 64, 0, 64, 4),
        (5, 3, 192, 128, 64, 40),
        (2, 4, 2, 0, 2, 1),
    ] {
        for x_dt in ACTS {
            for out in ACTS {
                let x = rng.vals_with_extremes(t * h * w, 3.0, 60);
                let cos = rng.vals(p * dim / 2, 1.0);
                let sin = rng.vals(p * dim / 2, 1.0);
                let pos = rng.ids(t, p);
                check(
                    &format!("rope t={t} h={h} w={w} {offset}+{dim} {x_dt}->{out}"),
                    Rope { offset, dim, out },
                    &[
                        Data::act(x_dt, &[t, h, w], &x),
                        Data::f32(&[p, dim / 2], &cos),
                        Data::f32(&[p, dim / 2], &sin),
                        Data::u32(&[t], &pos),
                    ],
                    &[Out::new(out, &[t, h, dim])],
                );
            }
        }
    }
}

#[test]
fn rope_position_past_the_table_is_an_error() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(8);
    check_error(
        "rope bad position",
        Rope {
            offset: 0,
            dim: 4,
            out: DType::F32,
        },
        &[
            Data::f32(&[2, 1, 4], &rng.vals(8, 1.0)),
            Data::f32(&[3, 2], &rng.vals(6, 1.0)),
            Data::f32(&[3, 2], &rng.vals(6, 1.0)),
            Data::u32(&[2], &[2, 3]),
        ],
        &[Out::new(DType::F32, &[2, 1, 4])],
    );
}
