use concord_core::{DType, Error};
use concord_ops::{Matmul, OpKind, Support};

use crate::harness::opencl;

#[test]
fn probe_reports_device_or_reason() {
    match concord_backend_opencl::probe() {
        Ok(b) => {
            let info = b.info();
            assert_eq!(info.name, "opencl");
            assert!(!info.device.is_empty() && !info.driver.is_empty());
            println!("opencl device: {} — {}", info.device, info.driver);
        }
        Err(Error::Unavailable { backend, reason }) => {
            assert_eq!(backend, "opencl");
            assert!(!reason.is_empty());
            println!("SKIP opencl: {reason}");
        }
        Err(other) => panic!("probe must report Unavailable, got {other}"),
    }
}

#[test]
fn every_op_compiles_and_dtypes_are_reported() {
    let Some(cl) = opencl() else { return };
    for &kind in OpKind::ALL {
        assert_eq!(cl.supports(kind, DType::F32), Support::Native);
        assert_eq!(cl.supports(kind, DType::BF16), Support::Native);
    }
    assert_eq!(
        cl.supports(OpKind::BlockFp8Matmul, DType::F8E4M3),
        Support::Native
    );
    assert!(matches!(
        cl.supports(OpKind::Matmul, DType::F16),
        Support::Unsupported(_)
    ));
    // prepare builds the program of the op's kind (and caches it).
    let op = Matmul { out: DType::F32 }.into();
    cl.prepare(&op).unwrap();
    cl.prepare(&op).unwrap();
}

#[test]
fn buffers_round_trip_and_foreign_buffers_are_refused() {
    let Some(cl) = opencl() else { return };
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let buf = cl.upload(&data).unwrap();
    let mut back = vec![0u8; 990];
    cl.read(&buf, 10, &mut back).unwrap();
    assert_eq!(back, data[10..]);
    assert!(cl.read(&buf, 999, &mut [0u8; 2]).is_err());
    let empty = cl.alloc(0).unwrap();
    cl.read(&empty, 0, &mut []).unwrap();
    let cpu = concord_backend_cpu::probe().unwrap();
    let foreign = cpu.upload(&data).unwrap();
    let err = cl.read(&foreign, 0, &mut back).unwrap_err();
    assert!(err.to_string().contains("cpu"), "{err}");
    cl.synchronize().unwrap();
}

#[test]
fn prepared_ops_are_reused_and_launches_run_in_order() {
    let Some(cl) = opencl() else { return };
    let cpu = concord_backend_cpu::probe().unwrap();
    let n = 1000;
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.37 - 100.0).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 / (i as f32 + 0.5)).collect();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let op = concord_ops::Add { out: DType::F32 }.into();
    let mut results = Vec::new();
    for backend in [&cl, &cpu] {
        let prepared = backend.prepare(&op).unwrap();
        let bufs: Vec<_> = [bytes(&a), bytes(&b), vec![0; 4 * n], vec![0; 4 * n]]
            .iter()
            .map(|v| backend.upload(v).unwrap())
            .collect();
        let view = |i: usize| concord_ops::TensorArg::new(&bufs[i], DType::F32, [1, n]);
        // c = a + b; d = c + b; c = d + a; d = c + c: each launch reads the previous output
        // (the last one the same buffer twice).
        for (x, y, out) in [(0, 1, 2), (2, 1, 3), (3, 0, 2), (2, 2, 3)] {
            backend
                .launch(&prepared, &[view(x), view(y)], &[view(out)])
                .unwrap();
        }
        backend.synchronize().unwrap();
        let mut d = vec![0u8; 4 * n];
        backend.read(&bufs[3], 0, &mut d).unwrap();
        results.push(d);
    }
    assert_eq!(results[0], results[1]);
}
