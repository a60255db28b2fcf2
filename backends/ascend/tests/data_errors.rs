//! Data-dependent errors found by a kernel on the Ascend backend (through the test-only ACL
//! stand-in): reported as the CPU backend words them, at the next read, and cleared after.
mod common;

use concord_core::{DType, Error};
use concord_ops::{Backend, GatherRows, TensorArg};

#[test]
fn gather_rows_row_past_the_source_is_the_cpus_error() {
    let ascend = common::standin_backend();
    let cpu = concord_backend_cpu::probe().expect("cpu backend");
    let src: Vec<u8> = (0..4 * 3 * 4).map(|i| i as u8).collect();
    let rows: Vec<u8> = [1u32, 4, 0].iter().flat_map(|r| r.to_le_bytes()).collect();
    let run = |be: &(dyn Backend + 'static)| -> Result<Vec<u8>, Error> {
        let (s, r, o) = (be.upload(&src)?, be.upload(&rows)?, be.alloc(3 * 3 * 4)?);
        be.run(
            &GatherRows.into(),
            &[
                TensorArg::new(&s, DType::F32, [4, 3]),
                TensorArg::new(&r, DType::U32, [3]),
            ],
            &[TensorArg::new(&o, DType::F32, [3, 3])],
        )?;
        let mut out = vec![0u8; 36];
        be.read(&o, 0, &mut out)?;
        Ok(out)
    };
    let want = run(&*cpu).expect_err("the cpu refuses row 4 of 4");
    let got = run(&*ascend).expect_err("the ascend kernel reports row 4 of 4");
    assert!(matches!(got, Error::InvalidArgument(_)), "{got}");
    assert_eq!(got.to_string(), want.to_string());
    assert!(got.to_string().contains("gather_rows: row 4"), "{got}");
    // Reported once: the backend works normally afterwards.
    ascend
        .synchronize()
        .expect("no stale error after it was reported");
}
