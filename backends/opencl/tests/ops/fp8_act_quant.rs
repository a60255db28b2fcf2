use concord_core::DType;
use concord_ops::{ActScaleFormat, Fp8ActQuant};

use crate::harness::{check, opencl, Data, Out, Rng, ACTS, EXTREMES};

#[test]
fn fp8_act_quant_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(5);
    for (m, k) in [(1, 1), (3, 129), (2, 300), (1, 3000), (4, 256), (2, 7)] {
        for x_dt in ACTS {
            let mut x = rng.vals_with_extremes(m * k, 500.0, 20);
            // A block of zeros (amax below the 1e-4 floor), a block of subnormals, a NaN.
            if k >= 256 {
                x[..128].fill(0.0);
                for v in &mut x[128..256] {
                    *v *= 1e-40;
                }
            }
            if m * k > 5 {
                x[m * k - 3] = f32::NAN;
            }
            let kb = k.div_ceil(128);
            for scale_fmt in [ActScaleFormat::F32, ActScaleFormat::Ue8m0] {
                check(
                    &format!("fp8_act_quant {m}x{k} {x_dt} {scale_fmt}"),
                    Fp8ActQuant { scale_fmt },
                    &[Data::act(x_dt, &[m, k], &x)],
                    &[
                        Out::new(DType::F8E4M3, &[m, k]),
                        Out::new(DType::F32, &[m, kb]),
                    ],
                );
            }
        }
    }
}

#[test]
fn fp8_act_quant_of_every_extreme() {
    if opencl().is_none() {
        return;
    }
    // One block per extreme value (amax = that value), plus the values next to it.
    let mut x = Vec::new();
    for e in EXTREMES {
        x.push(e);
        x.extend((1..128).map(|i| e * (i as f32 / 127.0)));
    }
    let m = EXTREMES.len();
    check(
        "fp8_act_quant extremes",
        Fp8ActQuant::default(),
        &[Data::f32(&[m, 128], &x)],
        &[
            Out::new(DType::F8E4M3, &[m, 128]),
            Out::new(DType::F32, &[m, 1]),
        ],
    );
}
