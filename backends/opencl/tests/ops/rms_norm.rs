use concord_ops::RmsNorm;

use crate::harness::{check, opencl, Data, Out, Rng, ACTS};

#[test]
fn rms_norm_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(3);
    for (t, d) in [(1, 7), (3, 129), (2, 3000), (4, 7168), (5, 1)] {
        for x_dt in ACTS {
            for w_dt in ACTS {
                for out in ACTS {
                    let mut x = rng.vals(t * d, 4.0);
                    // Extreme rows: zeros (mean 0 + eps), subnormals, huge values.
                    if t > 1 {
                        x[..d].fill(0.0);
                    }
                    if t > 2 {
                        for v in &mut x[d..2 * d] {
                            *v *= 1e-39;
                        }
                        for v in &mut x[2 * d..3 * d] {
                            *v *= 1e18;
                        }
                    }
                    let w = rng.vals(d, 2.0);
                    check(
                        &format!("rms_norm t={t} d={d} {x_dt}/{w_dt}->{out}"),
                        RmsNorm { eps: 1e-6, out },
                        &[Data::act(x_dt, &[t, d], &x), Data::act(w_dt, &[d], &w)],
                        &[Out::new(out, &[t, d])],
                    );
                }
            }
        }
    }
}
