use concord_ops::Matmul;

use crate::harness::{check, opencl, Data, Out, Rng, ACTS};

#[test]
fn matmul_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(4);
    for (m, k, n) in [
        (1, 1, 1),
        (3, 129, 17),
        (1, 3000, 5),
        (16, 256, 64),
        (2, 127, 3),
        (5, 0, 4),
    ] {
        for x_dt in ACTS {
            for w_dt in ACTS {
                for out in ACTS {
                    let x = rng.vals_with_extremes(m * k, 2.0, 97);
                    let w = rng.vals(n * k, 1.0);
                    check(
                        &format!("matmul {m}x{k}x{n} {x_dt}·{w_dt}->{out}"),
                        Matmul { out },
                        &[Data::act(x_dt, &[m, k], &x), Data::act(w_dt, &[n, k], &w)],
                        &[Out::new(out, &[m, n])],
                    );
                }
            }
        }
    }
}
