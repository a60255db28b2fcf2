use concord_ops::Swiglu;

use crate::harness::{check, opencl, Data, Out, Rng, ACTS};

#[test]
fn swiglu_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(16);
    for (t, c) in [(1, 1), (3, 129), (2, 3000), (7, 18)] {
        for a_dt in ACTS {
            for b_dt in ACTS {
                for out in ACTS {
                    let a = rng.vals_with_extremes(t * c, 100.0, 8);
                    let b = rng.vals_with_extremes(t * c, 100.0, 8);
                    check(
                        &format!("swiglu {t}x{c} {a_dt}/{b_dt}->{out}"),
                        Swiglu { out },
                        &[Data::act(a_dt, &[t, c], &a), Data::act(b_dt, &[t, c], &b)],
                        &[Out::new(out, &[t, c])],
                    );
                }
            }
        }
    }
}

#[test]
fn swiglu_at_the_exp_thresholds() {
    if opencl().is_none() {
        return;
    }
    // silu's exp(-g) across overflow, underflow and the subnormal results of exp.
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
    let u: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 * 1e-3).collect();
    check(
        "swiglu thresholds",
        Swiglu {
            out: concord_core::DType::F32,
        },
        &[Data::f32(&[1, n], &g), Data::f32(&[1, n], &u)],
        &[Out::new(concord_core::DType::F32, &[1, n])],
    );
}
