use concord_core::DType;
use concord_ops::SliceColumns;

use crate::harness::{check, opencl, Data, Out, Rng};

#[test]
fn slice_columns_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(17);
    for (t, c, start, len) in [
        (3, 10, 2, 5),
        (2, 129, 1, 127),
        (1, 3000, 512, 2488),
        (4, 7, 7, 0),
    ] {
        for dtype in [DType::F32, DType::BF16, DType::F8E4M3, DType::U32] {
            let n = t * c;
            let data = match dtype {
                DType::F8E4M3 => Data::e4m3(&[t, c], rng.e4m3_codes(n)),
                DType::U32 => Data::u32(&[t, c], &rng.ids(n, 1 << 30)),
                d => Data::act(d, &[t, c], &rng.vals(n, 5.0)),
            };
            check(
                &format!("slice_columns {t}x{c} {start}+{len} {dtype}"),
                SliceColumns { start, len },
                &[data],
                &[Out::new(dtype, &[t, len])],
            );
        }
    }
}
