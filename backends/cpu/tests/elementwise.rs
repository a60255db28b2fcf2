//! embedding, add, swiglu, slice_columns, scatter_rows, gather_rows.
mod common;

use common::*;
use concord_core::convert::round_to_bf16;
use concord_core::numerics::math::silu;
use concord_core::{DType, Error};
use concord_ops::{Add, Embedding, GatherRows, ScatterRows, SliceColumns, Swiglu, TensorArg};

#[test]
fn embedding_gathers_and_rounds() {
    let be = backend();
    let e = 2f32.powi(-9);
    let table = f32s(&be, &[3, 2], &[0.0, 1.0, 2.0, 3.0, 1.0 + e, 1.0 + 3.0 * e]);
    let ids = u32s(&be, &[4], &[2, 0, 1, 2]);
    let y = run1(&be, Embedding { out: DType::F32 }, &[&ids, &table]).f32();
    assert_eq!(
        y,
        vec![
            1.0 + e,
            1.0 + 3.0 * e,
            0.0,
            1.0,
            2.0,
            3.0,
            1.0 + e,
            1.0 + 3.0 * e
        ]
    );
    let y = run1(&be, Embedding { out: DType::BF16 }, &[&ids, &table]).f32();
    assert_eq!(&y[..2], &[1.0, 1.0078125]);
    let bad = u32s(&be, &[1], &[3]);
    let r = run(&be, Embedding { out: DType::F32 }, &[&bad, &table]);
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}

#[test]
fn add_is_one_f32_add_then_one_rounding() {
    let be = backend();
    let e = 2f32.powi(-8);
    // BF16 a + F32 b: 1 + 2^-8 is a BF16 tie → 1.0; 1 + 3·2^-8 → 1 + 2^-6 (even).
    let a = bf16s(&be, &[1, 3], &[1.0, 1.0, -2.0]);
    let b = f32s(&be, &[1, 3], &[e, 3.0 * e, 0.5]);
    assert_eq!(
        run1(&be, Add { out: DType::BF16 }, &[&a, &b]).f32(),
        vec![1.0, 1.015625, -1.5]
    );
    assert_eq!(
        run1(&be, Add { out: DType::F32 }, &[&a, &b]).f32(),
        vec![1.0 + e, 1.0 + 3.0 * e, -1.5]
    );
}

#[test]
fn swiglu_is_rounded_silu_times_up() {
    let be = backend();
    let mut rng = Rng::new(90);
    let n = 5000;
    let g: Vec<f32> = (0..n).map(|_| rng.uniform(-10.0, 10.0)).collect();
    let u = rng.vec(n);
    let y = run1(
        &be,
        Swiglu { out: DType::BF16 },
        &[&f32s(&be, &[2, n / 2], &g), &f32s(&be, &[2, n / 2], &u)],
    )
    .f32();
    for i in 0..n {
        assert_eq!(y[i].to_bits(), round_to_bf16(silu(g[i]) * u[i]).to_bits());
        let want = g[i] as f64 / (1.0 + (-g[i] as f64).exp()) * u[i] as f64;
        assert!((y[i] as f64 - want).abs() <= 2f64.powi(-8) * want.abs() + 1e-30);
    }
    let y = run1(
        &be,
        Swiglu { out: DType::F32 },
        &[
            &f32s(&be, &[1, 2], &[0.0, 1.0]),
            &f32s(&be, &[1, 2], &[3.0, 2.0]),
        ],
    )
    .f32();
    assert_eq!(y[0], 0.0);
    assert_eq!(y[1], silu(1.0) * 2.0);
    // f32 out: every bit of the product, the exp's special inputs included (the exps run 64
    // at a time on a vector kernel: runs of 64, 65 and 129 elements exercise its tails).
    let mut g: Vec<f32> = (0..5000).map(|_| rng.uniform(-100.0, 100.0)).collect();
    g[..12].copy_from_slice(&[
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        0.0,
        88.8,
        -88.8,
        -87.3,
        1e-30,
        -1e-45,
        f32::MAX,
        f32::MIN,
    ]);
    let u = rng.vec(g.len());
    for len in [1, 63, 64, 65, 129, g.len()] {
        let y = run1(
            &be,
            Swiglu { out: DType::F32 },
            &[
                &f32s(&be, &[1, len], &g[..len]),
                &f32s(&be, &[1, len], &u[..len]),
            ],
        )
        .f32();
        for i in 0..len {
            assert_eq!(
                y[i].to_bits(),
                (silu(g[i]) * u[i]).to_bits(),
                "g {} u {} (row of {len})",
                g[i],
                u[i]
            );
        }
    }
}

#[test]
fn slice_columns_copies_bits() {
    let be = backend();
    let x = bf16s(&be, &[2, 4], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let y = run1(&be, SliceColumns { start: 1, len: 2 }, &[&x]);
    assert_eq!(y.dtype, DType::BF16);
    assert_eq!(y.f32(), vec![2.0, 3.0, 6.0, 7.0]);
}

#[test]
fn scatter_rows_writes_only_the_slots() {
    let be = backend();
    let src = f32s(&be, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let slots = u32s(&be, &[2], &[3, 1]);
    let dst = f32s(&be, &[4, 3], &[-1.0; 12]);
    let out = TensorArg::new(&dst.buf, DType::F32, [4, 3]);
    be.run(
        &ScatterRows.into(),
        &[src.arg(), slots.arg()],
        std::slice::from_ref(&out),
    )
    .unwrap();
    let mut bytes = vec![0u8; 48];
    be.read(&dst.buf, 0, &mut bytes).unwrap();
    let got: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![-1.0, -1.0, -1.0, 4.0, 5.0, 6.0, -1.0, -1.0, -1.0, 1.0, 2.0, 3.0]
    );
    // A slot past the destination's rows is an error and writes nothing.
    let bad = u32s(&be, &[2], &[0, 4]);
    let r = be.run(&ScatterRows.into(), &[src.arg(), bad.arg()], &[out]);
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    be.read(&dst.buf, 0, &mut bytes).unwrap();
    assert_eq!(f32::from_le_bytes(bytes[..4].try_into().unwrap()), -1.0);
}

#[test]
fn gather_rows_copies_the_named_rows_bit_for_bit() {
    let be = backend();
    // Rows repeated, reversed and skipped (row 1 of 4 is never named).
    let rows = u32s(&be, &[5], &[3, 2, 0, 3, 2]);
    // F32 with bit patterns arithmetic would not keep: -0.0, a NaN payload, a subnormal.
    let src = f32_bits(
        &be,
        &[4, 2],
        &[
            1.0f32.to_bits(),
            (-0.0f32).to_bits(),
            0x7FC0_1234,
            1,
            2.5f32.to_bits(),
            0x8000_0001,
            0x7F80_0000,
            0xFF80_0001,
        ],
    );
    let y = run1(&be, GatherRows, &[&src, &rows]);
    assert_eq!(y.dtype, DType::F32);
    assert_eq!(
        y.u32(),
        vec![
            0x7F80_0000,
            0xFF80_0001,
            2.5f32.to_bits(),
            0x8000_0001,
            1.0f32.to_bits(),
            (-0.0f32).to_bits(),
            0x7F80_0000,
            0xFF80_0001,
            2.5f32.to_bits(),
            0x8000_0001,
        ]
    );

    // BF16, three columns: raw bits, a NaN and -0 among them.
    let src = bf16_bits(
        &be,
        &[4, 3],
        &[
            0x3F80, 0x8000, 0x7FC1, // row 0
            0x1111, 0x2222, 0x3333, // row 1
            0x4040, 0xC040, 0x0001, // row 2
            0xFF81, 0x0080, 0x7F7F, // row 3
        ],
    );
    let y = run1(&be, GatherRows, &[&src, &rows]);
    assert_eq!(y.dtype, DType::BF16);
    let got: Vec<u16> = y
        .bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(
        got,
        vec![
            0xFF81, 0x0080, 0x7F7F, //
            0x4040, 0xC040, 0x0001, //
            0x3F80, 0x8000, 0x7FC1, //
            0xFF81, 0x0080, 0x7F7F, //
            0x4040, 0xC040, 0x0001, //
        ]
    );

    // U8 rows of one byte: the narrowest element.
    let src = u8s(&be, &[4, 1], &[10, 11, 12, 13]);
    let y = run1(&be, GatherRows, &[&src, &rows]);
    assert_eq!(y.dtype, DType::U8);
    assert_eq!(y.bytes, vec![13, 12, 10, 13, 12]);

    // No rows: an empty output, not an error.
    let none = u32s(&be, &[0], &[]);
    assert!(run1(&be, GatherRows, &[&src, &none]).bytes.is_empty());
}

#[test]
fn gather_rows_row_past_the_source_is_an_error_naming_it() {
    let be = backend();
    let src = f32s(&be, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let bad = u32s(&be, &[3], &[0, 2, 1]);
    let r = run(&be, GatherRows, &[&src, &bad]);
    match r {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains("gather_rows") && m.contains("row 2"), "{m}")
        }
        other => panic!("expected an invalid-argument error, got {:?}", other.err()),
    }
    // Rows must be U32.
    let f = f32s(&be, &[1], &[0.0]);
    assert!(matches!(
        run(&be, GatherRows, &[&src, &f]),
        Err(Error::InvalidArgument(_))
    ));
}
