use concord_core::DType;
use concord_ops::Embedding;

use crate::harness::{check, check_error, opencl, Data, Out, Rng, ACTS};

#[test]
fn embedding_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(1);
    for (v, h, t) in [(37, 129, 5), (11, 3000, 1), (1, 1, 3), (300, 64, 17)] {
        for table_dt in ACTS {
            for out in ACTS {
                let table = rng.vals_with_extremes(v * h, 3.0, 50);
                let ids = rng.ids(t, v);
                check(
                    &format!("embedding v={v} h={h} t={t} {table_dt}->{out}"),
                    Embedding { out },
                    &[Data::u32(&[t], &ids), Data::act(table_dt, &[v, h], &table)],
                    &[Out::new(out, &[t, h])],
                );
            }
        }
    }
}

#[test]
fn embedding_id_past_the_table_is_an_error() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(2);
    let (v, h) = (5, 9);
    check_error(
        "embedding bad id",
        Embedding { out: DType::F32 },
        &[
            Data::u32(&[3], &[1, 5, 0]),
            Data::f32(&[v, h], &rng.vals(v * h, 1.0)),
        ],
        &[Out::new(DType::F32, &[3, h])],
    );
}
