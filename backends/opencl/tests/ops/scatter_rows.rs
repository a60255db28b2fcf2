use concord_core::DType;
use concord_ops::ScatterRows;

use crate::harness::{check, check_error, opencl, Data, Out, Rng};

#[test]
fn scatter_rows_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(18);
    // (T, C, S, slots): duplicates (the later wins), one row, long rows.
    let cases: [(usize, usize, usize, Vec<u32>); 4] = [
        (3, 5, 6, vec![4, 1, 4]),
        (1, 576, 10, vec![9]),
        (4, 3000, 5, vec![0, 1, 2, 0]),
        (2, 1, 2, vec![1, 0]),
    ];
    for (t, c, s, slots) in cases {
        for dtype in [DType::F32, DType::BF16] {
            check(
                &format!("scatter_rows t={t} c={c} s={s} {dtype}"),
                ScatterRows,
                &[
                    Data::act(dtype, &[t, c], &rng.vals(t * c, 2.0)),
                    Data::u32(&[t], &slots),
                ],
                &[Out::from(Data::act(dtype, &[s, c], &rng.vals(s * c, 9.0)))],
            );
        }
    }
}

#[test]
fn scatter_rows_slot_past_the_destination_is_an_error() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(19);
    check_error(
        "scatter_rows bad slot",
        ScatterRows,
        &[
            Data::f32(&[2, 3], &rng.vals(6, 1.0)),
            Data::u32(&[2], &[1, 4]),
        ],
        &[Out::from(Data::f32(&[4, 3], &rng.vals(12, 1.0)))],
    );
}
