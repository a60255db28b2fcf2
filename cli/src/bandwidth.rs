//! Memory bandwidth, the denominator of `concord bench`'s decode floor: the host's from large
//! copies, a device's from the `add` op streaming large buffers (two reads and one write per
//! element), measured through the same `Backend` the model runs on.
use std::time::Instant;

use concord_core::{DType, Result};
use concord_ops::{Add, Backend, Op, TensorArg};

/// Host memory bandwidth (bytes/s) from large copies: each copy reads and writes its size.
pub fn host() -> f64 {
    let n = 256 << 20;
    let src = vec![1u8; n];
    let mut dst = vec![0u8; n];
    dst.copy_from_slice(&src);
    let t = Instant::now();
    let reps = 4;
    for _ in 0..reps {
        dst.copy_from_slice(&src);
        std::hint::black_box(&dst);
    }
    (2 * n * reps) as f64 / t.elapsed().as_secs_f64()
}

/// A device's memory bandwidth (bytes/s): `add` over `elements` F32 values per launch,
/// after one warm-up launch, timed to the end of the queue.
pub fn device(backend: &dyn Backend, elements: usize) -> Result<f64> {
    let bytes = elements * 4;
    let a = backend.alloc(bytes)?;
    let b = backend.alloc(bytes)?;
    let out = backend.alloc(bytes)?;
    let zeros = vec![0u8; bytes];
    backend.write(&a, 0, &zeros)?;
    backend.write(&b, 0, &zeros)?;
    let op = Op::from(Add { out: DType::F32 });
    let prepared = backend.prepare(&op)?;
    let view = |buf| TensorArg::new(buf, DType::F32, [elements]);
    let launch = || backend.launch(&prepared, &[view(&a), view(&b)], &[view(&out)]);
    launch()?;
    backend.synchronize()?;
    let reps = 8;
    let t = Instant::now();
    for _ in 0..reps {
        launch()?;
    }
    backend.synchronize()?;
    Ok((3 * bytes * reps) as f64 / t.elapsed().as_secs_f64())
}
