use concord_core::DType;
use concord_ops::{GatherRows, TensorDesc};

use crate::harness::{check, check_error, opencl, Data, Out, Rng};

#[test]
fn gather_rows_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(20);
    // (S, C, rows): repeats and reversals, one row, long rows, a pool larger than the gather,
    // no rows at all.
    let cases: [(usize, usize, Vec<u32>); 6] = [
        (6, 5, vec![4, 1, 4, 0]),
        (10, 576, vec![9]),
        (5, 3000, vec![4, 3, 2, 1, 0]),
        (2, 1, vec![1, 1, 0]),
        (64, 7, vec![63, 0, 17, 17, 40]),
        (3, 4, vec![]),
    ];
    for (s, c, rows) in cases {
        let t = rows.len();
        for dtype in [DType::F32, DType::BF16, DType::F8E4M3, DType::U8] {
            let n = s * c;
            let src = match dtype {
                DType::F8E4M3 => Data::e4m3(&[s, c], rng.e4m3_codes(n)),
                DType::U8 => Data {
                    desc: TensorDesc::new(DType::U8, [s, c]),
                    bytes: (0..n).map(|_| rng.below(256) as u8).collect(),
                },
                d => Data::act(d, &[s, c], &rng.vals_with_extremes(n, 4.0, 7)),
            };
            check(
                &format!("gather_rows s={s} c={c} t={t} {dtype}"),
                GatherRows,
                &[src, Data::u32(&[t], &rows)],
                &[Out::new(dtype, &[t, c])],
            );
        }
    }
}

#[test]
fn gather_rows_row_past_the_source_is_an_error() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(21);
    check_error(
        "gather_rows bad row",
        GatherRows,
        &[
            Data::f32(&[4, 3], &rng.vals(12, 1.0)),
            Data::u32(&[3], &[1, 4, 0]),
        ],
        &[Out::new(DType::F32, &[3, 3])],
    );
}
