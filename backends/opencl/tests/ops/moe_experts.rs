use concord_core::DType;
use concord_ops::{ActScaleFormat, ExpertWeights, MoeExperts};

use crate::harness::{check, check_error, opencl, Data, Out, Rng, ACTS};

#[test]
fn moe_experts_dense_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(12);
    // (T, H, I, E, K)
    for (t, h, i, e, k) in [(3, 20, 12, 4, 2), (1, 130, 129, 3, 3), (5, 64, 200, 8, 4)] {
        for x_dt in ACTS {
            for w_dt in ACTS {
                for out in ACTS {
                    let x = rng.vals(t * h, 2.0);
                    let mut ids = rng.ids(t * k, e);
                    ids[0] = (e - 1) as u32;
                    let w: Vec<f32> = (0..t * k).map(|_| rng.unit()).collect();
                    check(
                        &format!(
                            "moe_experts dense t={t} h={h} i={i} e={e} k={k} {x_dt}/{w_dt}->{out}"
                        ),
                        MoeExperts {
                            weights: ExpertWeights::Dense,
                            out,
                        },
                        &[
                            Data::act(x_dt, &[t, h], &x),
                            Data::u32(&[t, k], &ids),
                            Data::f32(&[t, k], &w),
                            Data::act(w_dt, &[e, i, h], &rng.vals(e * i * h, 0.3)),
                            Data::act(w_dt, &[e, i, h], &rng.vals(e * i * h, 0.3)),
                            Data::act(w_dt, &[e, h, i], &rng.vals(e * h * i, 0.3)),
                        ],
                        &[Out::new(out, &[t, h])],
                    );
                }
            }
        }
    }
}

#[test]
fn moe_experts_block_fp8_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(13);
    // (T, H, I, E, K, block rows)
    for (t, h, i, e, k, bn) in [
        (2, 200, 130, 3, 2, 128),
        (1, 128, 64, 2, 1, 5),
        (4, 300, 257, 4, 3, 64),
    ] {
        for x_dt in ACTS {
            for out in ACTS {
                let x = rng.vals_with_extremes(t * h, 3.0, 40);
                let ids = rng.ids(t * k, e);
                let w: Vec<f32> = (0..t * k).map(|_| rng.unit()).collect();
                let scales = |rng: &mut Rng, rows: usize, cols: usize| {
                    let shape = [e, rows.div_ceil(bn), cols.div_ceil(128)];
                    let v: Vec<f32> = (0..shape.iter().product())
                        .map(|_| rng.unit() * 0.01)
                        .collect();
                    Data::f32(&shape, &v)
                };
                // Both activation scale formats, without doubling the cases.
                let scale_fmt = if out == DType::BF16 {
                    ActScaleFormat::Ue8m0
                } else {
                    ActScaleFormat::F32
                };
                check(
                    &format!(
                        "moe_experts fp8 t={t} h={h} i={i} e={e} k={k} bn={bn} {x_dt}->{out} \
                         {scale_fmt}"
                    ),
                    MoeExperts {
                        weights: ExpertWeights::BlockFp8 {
                            block: [bn, 128],
                            scale_fmt,
                        },
                        out,
                    },
                    &[
                        Data::act(x_dt, &[t, h], &x),
                        Data::u32(&[t, k], &ids),
                        Data::f32(&[t, k], &w),
                        Data::e4m3(&[e, i, h], rng.e4m3_codes(e * i * h)),
                        scales(&mut rng, i, h),
                        Data::e4m3(&[e, i, h], rng.e4m3_codes(e * i * h)),
                        scales(&mut rng, i, h),
                        Data::e4m3(&[e, h, i], rng.e4m3_codes(e * h * i)),
                        scales(&mut rng, h, i),
                    ],
                    &[Out::new(out, &[t, h])],
                );
            }
        }
    }
}

#[test]
fn moe_experts_id_past_the_experts_is_an_error() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(14);
    let (t, h, i, e, k) = (2, 8, 4, 3, 2);
    check_error(
        "moe_experts bad id",
        MoeExperts {
            weights: ExpertWeights::Dense,
            out: DType::F32,
        },
        &[
            Data::f32(&[t, h], &rng.vals(t * h, 1.0)),
            Data::u32(&[t, k], &[0, 1, 2, 3]),
            Data::f32(&[t, k], &[0.5; 4]),
            Data::f32(&[e, i, h], &rng.vals(e * i * h, 1.0)),
            Data::f32(&[e, i, h], &rng.vals(e * i * h, 1.0)),
            Data::f32(&[e, h, i], &rng.vals(e * h * i, 1.0)),
        ],
        &[Out::new(DType::F32, &[t, h])],
    );
}
