//! Memory bandwidth, the denominator of `concord bench`'s decode floor: the host's from
//! reading a large buffer with the run's own threads, a device's from the `add` op streaming
//! large buffers (two reads and one write per element), measured through the same `Backend`
//! the model runs on.
use std::time::Instant;

use concord_core::{DType, Result};
use concord_ops::{Add, Backend, Op, TensorArg};
use rayon::prelude::*;

/// Host memory read bandwidth (bytes/s) with the run's own CPU threads: each thread of the
/// pool the model computes on (`--threads`) sums its share of a 256 MiB buffer, as a decode
/// step streams its weights; the best of a few passes.
pub fn host() -> f64 {
    let words: usize = (256 << 20) / 8;
    let buffer: Vec<u64> = (0..words as u64).collect();
    let threads = rayon::current_num_threads();
    let share = words.div_ceil(threads);
    let pass = || {
        buffer
            .par_chunks(share)
            .map(|chunk| chunk.iter().fold(0u64, |sum, &w| sum.wrapping_add(w)))
            .reduce(|| 0, u64::wrapping_add)
    };
    std::hint::black_box(pass());
    let mut best = f64::INFINITY;
    for _ in 0..4 {
        let t = Instant::now();
        std::hint::black_box(pass());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (words * 8) as f64 / best
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
