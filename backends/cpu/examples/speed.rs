//! Rough throughput of the reference kernels: `cargo run --release -p concord-backend-cpu
//! --example speed`.
use std::time::Instant;

use concord_core::DType;
use concord_ops::{Backend, BlockFp8Matmul, Buffer, Matmul, Op, TensorArg};

fn buf(be: &dyn Backend, bytes: usize) -> Buffer {
    let b = be.alloc(bytes).unwrap();
    // Small non-zero values: 0x3C = 0.0117 as BF16 high byte / a tiny f32 / e4m3 1.5.
    be.write(&b, 0, &vec![0x3Cu8; bytes]).unwrap();
    b
}

/// CPU seconds used by this process so far (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

/// Wall time per call, and throughput per CPU-second (meaningful on a loaded machine).
fn time(label: &str, flops: f64, mut f: impl FnMut()) {
    f();
    let reps = 20;
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..reps {
        f();
    }
    let s = t0.elapsed().as_secs_f64() / reps as f64;
    let c = (cpu_seconds() - c0) / reps as f64;
    println!(
        "{label:<36} {:>8.3} ms  {:>6.2} GFLOP/s wall  {:>6.2} GFLOP/cpu-s",
        s * 1e3,
        flops / s / 1e9,
        flops / c / 1e9
    );
}

fn main() {
    let be = concord_backend_cpu::probe().unwrap();
    println!("{}", be.info().device);
    for (m, k, n, wdt) in [
        (1, 2048, 2048, DType::F32),
        (1, 2048, 2048, DType::BF16),
        (1, 7168, 2048, DType::BF16),
        (64, 2048, 2048, DType::F32),
        (64, 2048, 2048, DType::BF16),
    ] {
        let x = buf(be.as_ref(), m * k * 4);
        let w = buf(be.as_ref(), n * k * wdt.size_in_bytes());
        let y = buf(be.as_ref(), m * n * 4);
        let op: Op = Matmul { out: DType::F32 }.into();
        let p = be.prepare(&op).unwrap();
        let ins = [
            TensorArg::new(&x, DType::F32, [m, k]),
            TensorArg::new(&w, wdt, [n, k]),
        ];
        let outs = [TensorArg::new(&y, DType::F32, [m, n])];
        time(
            &format!("matmul {m}x{k}x{n} {wdt} weights"),
            2.0 * (m * k * n) as f64,
            || be.launch(&p, &ins, &outs).unwrap(),
        );
    }
    for (m, k, n) in [(1, 7168, 2048), (64, 7168, 2048)] {
        let xq = buf(be.as_ref(), m * k);
        let xs = buf(be.as_ref(), m * k.div_ceil(128) * 4);
        let w = buf(be.as_ref(), n * k);
        let ws = buf(be.as_ref(), n.div_ceil(128) * k.div_ceil(128) * 4);
        let y = buf(be.as_ref(), m * n * 2);
        let op: Op = BlockFp8Matmul {
            block: [128, 128],
            out: DType::BF16,
        }
        .into();
        let p = be.prepare(&op).unwrap();
        let ins = [
            TensorArg::new(&xq, DType::F8E4M3, [m, k]),
            TensorArg::new(&xs, DType::F32, [m, k.div_ceil(128)]),
            TensorArg::new(&w, DType::F8E4M3, [n, k]),
            TensorArg::new(&ws, DType::F32, [n.div_ceil(128), k.div_ceil(128)]),
        ];
        let outs = [TensorArg::new(&y, DType::BF16, [m, n])];
        time(
            &format!("block_fp8_matmul {m}x{k}x{n}"),
            2.0 * (m * k * n) as f64,
            || be.launch(&p, &ins, &outs).unwrap(),
        );
    }
}
