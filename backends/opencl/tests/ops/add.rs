use concord_ops::Add;

use crate::harness::{check, opencl, Data, Out, Rng, ACTS};

#[test]
fn add_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(15);
    for (t, c) in [(1, 1), (3, 129), (2, 3000), (7, 18)] {
        for a_dt in ACTS {
            for b_dt in ACTS {
                for out in ACTS {
                    let a = rng.vals_with_extremes(t * c, 100.0, 8);
                    let b = rng.vals_with_extremes(t * c, 100.0, 8);
                    check(
                        &format!("add {t}x{c} {a_dt}/{b_dt}->{out}"),
                        Add { out },
                        &[Data::act(a_dt, &[t, c], &a), Data::act(b_dt, &[t, c], &b)],
                        &[Out::new(out, &[t, c])],
                    );
                }
            }
        }
    }
}
