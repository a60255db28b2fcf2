//! The Backend surface: probe, supports, memory, and launches that must fail cleanly.
mod common;

use std::any::Any;

use common::*;
use concord_core::{DType, Error};
use concord_ops::{Buffer, DeviceStorage, Fp8ActQuant, Matmul, Op, OpKind, Support, TensorArg};

#[test]
fn probe_names_the_device() {
    let be = backend();
    assert_eq!(be.info().name, "cpu");
    assert!(!be.info().device.is_empty());
    assert!(be.info().device.contains("threads"));
}

#[test]
fn supports_every_kind_with_f32_and_bf16() {
    let be = backend();
    for &kind in OpKind::ALL {
        assert_eq!(be.supports(kind, DType::F32), Support::Native, "{kind}");
        assert_eq!(be.supports(kind, DType::BF16), Support::Native, "{kind}");
        let fp8 = matches!(
            kind,
            OpKind::BlockFp8Matmul | OpKind::MoeExperts | OpKind::Fp8ActQuant
        );
        // The byte-copy ops take every dtype; the others only their own.
        let copy = matches!(
            kind,
            OpKind::SliceColumns | OpKind::ScatterRows | OpKind::GatherRows
        );
        assert_eq!(
            be.supports(kind, DType::F8E4M3) == Support::Native,
            fp8 || copy,
            "{kind}"
        );
        for other in [DType::F16, DType::U8, DType::U32, DType::I64] {
            assert_eq!(
                be.supports(kind, other) == Support::Native,
                copy,
                "{kind} {other}"
            );
        }
    }
}

#[test]
fn write_read_round_trip_and_bounds() {
    let be = backend();
    let b = be.alloc(10).unwrap();
    be.write(&b, 3, &[1, 2, 3]).unwrap();
    let mut out = [0u8; 4];
    be.read(&b, 2, &mut out).unwrap();
    assert_eq!(out, [0, 1, 2, 3]);
    assert!(matches!(
        be.write(&b, 8, &[0; 3]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        be.read(&b, 11, &mut [0u8; 0]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(be.synchronize().is_ok());
}

fn matmul_args(be: &std::sync::Arc<dyn concord_ops::Backend>) -> (T, T) {
    (f32s(be, &[2, 3], &[1.0; 6]), f32s(be, &[4, 3], &[1.0; 12]))
}

#[test]
fn wrong_shapes_are_errors() {
    let be = backend();
    let (x, w) = matmul_args(&be);
    let op: Op = Matmul { out: DType::F32 }.into();
    let out = be.alloc(64).unwrap();
    // Inner dimensions disagree.
    let w_bad = TensorArg::new(&w.buf, DType::F32, [3, 4]);
    let r = be.run(
        &op,
        &[x.arg(), w_bad],
        &[TensorArg::new(&out, DType::F32, [2, 3])],
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    // Output of the wrong shape, and of the wrong dtype.
    for (dt, shape) in [(DType::F32, vec![2, 3]), (DType::BF16, vec![2, 4])] {
        let r = be.run(&op, &[x.arg(), w.arg()], &[TensorArg::new(&out, dt, shape)]);
        assert!(matches!(r, Err(Error::InvalidArgument(_))));
    }
    // Wrong number of outputs.
    assert!(be.run(&op, &[x.arg(), w.arg()], &[]).is_err());
    // A view past the end of its buffer.
    let small = be.alloc(16).unwrap();
    let r = be.run(
        &op,
        &[x.arg(), w.arg()],
        &[TensorArg::new(&small, DType::F32, [2, 4])],
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    // A misaligned view.
    let mut x_odd = TensorArg::new(&out, DType::F32, [2, 3]);
    x_odd.offset = 2;
    let out2 = be.alloc(32).unwrap();
    let r = be.run(
        &op,
        &[x_odd, w.arg()],
        &[TensorArg::new(&out2, DType::F32, [2, 4])],
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}

#[test]
fn output_aliasing_an_input_is_an_error() {
    let be = backend();
    let (x, w) = matmul_args(&be);
    let op: Op = Matmul { out: DType::F32 }.into();
    // Same buffer as x, even at a disjoint offset.
    let big = be.alloc(24 + 32).unwrap();
    let x_view = TensorArg::new(&big, DType::F32, [2, 3]);
    let mut out_view = TensorArg::new(&big, DType::F32, [2, 4]);
    out_view.offset = 24;
    let r = be.run(&op, &[x_view, w.arg()], &[out_view]);
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    let r = be.run(
        &op,
        &[x.arg(), w.arg()],
        &[TensorArg::new(&w.buf, DType::F32, [2, 4])],
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    // Two outputs in one buffer.
    let both = be.alloc(64).unwrap();
    let mut s = TensorArg::new(&both, DType::F32, [2, 1]);
    s.offset = 8;
    let r = be.run(
        &Fp8ActQuant::default().into(),
        &[x.arg()],
        &[TensorArg::new(&both, DType::F8E4M3, [2, 3]), s],
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}

struct Foreign;
impl DeviceStorage for Foreign {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "elsewhere"
    }
}

#[test]
fn foreign_buffers_are_rejected() {
    let be = backend();
    let (x, w) = matmul_args(&be);
    let foreign = Buffer::new(32, Box::new(Foreign));
    let r = be.run(
        &Matmul { out: DType::F32 }.into(),
        &[x.arg(), w.arg()],
        &[TensorArg::new(&foreign, DType::F32, [2, 4])],
    );
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    assert!(be.write(&foreign, 0, &[1]).is_err());
}

#[test]
fn views_at_offsets_and_inputs_sharing_a_buffer() {
    // x and w live in one buffer (both read), the output at an offset in another.
    let be = backend();
    let mut bytes = Vec::new();
    for v in [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
        bytes.extend(v.to_le_bytes());
    }
    let buf = be.upload(&bytes).unwrap();
    let x = TensorArg::new(&buf, DType::F32, [1, 2]);
    let mut w = TensorArg::new(&buf, DType::F32, [2, 2]);
    w.offset = 8;
    let out = be.alloc(12).unwrap();
    let mut o = TensorArg::new(&out, DType::F32, [1, 2]);
    o.offset = 4;
    be.run(&Matmul { out: DType::F32 }.into(), &[x, w], &[o])
        .unwrap();
    let mut r = [0u8; 8];
    be.read(&out, 4, &mut r).unwrap();
    // [1, 2]·[3, 4] = 11, [1, 2]·[5, 6] = 17.
    assert_eq!(f32::from_le_bytes(r[..4].try_into().unwrap()), 11.0);
    assert_eq!(f32::from_le_bytes(r[4..].try_into().unwrap()), 17.0);
}
