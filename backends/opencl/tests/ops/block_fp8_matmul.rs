use concord_ops::BlockFp8Matmul;

use crate::harness::{check, opencl, Data, Out, Rng, ACTS};

#[test]
fn block_fp8_matmul_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(6);
    for (m, k, n, bn) in [
        (2usize, 300usize, 130usize, 128usize),
        (1, 128, 1, 128),
        (5, 1000, 17, 7),
        (3, 7, 4, 1),
        (1, 3000, 3, 2),
    ] {
        for out in ACTS {
            let kb = k.div_ceil(128);
            // Every code but the NaNs, plus a few NaN codes in one case.
            let mut xq = rng.e4m3_codes(m * k);
            let w = rng.e4m3_codes(n * k);
            if m == 5 {
                xq[3] = 0x7F;
            }
            let xs: Vec<f32> = (0..m * kb).map(|_| rng.unit() * 0.01 + 1e-6).collect();
            let ws: Vec<f32> = (0..n.div_ceil(bn) * kb)
                .map(|_| rng.unit() * 0.02)
                .collect();
            check(
                &format!("block_fp8_matmul {m}x{k}x{n} bn={bn} ->{out}"),
                BlockFp8Matmul {
                    block: [bn, 128],
                    out,
                },
                &[
                    Data::e4m3(&[m, k], xq),
                    Data::f32(&[m, kb], &xs),
                    Data::e4m3(&[n, k], w),
                    Data::f32(&[n.div_ceil(bn), kb], &ws),
                ],
                &[Out::new(out, &[m, n])],
            );
        }
    }
}
