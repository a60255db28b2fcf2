//! OpenCL against the CPU reference on the same machine: time per launch of a few ops, and
//! the ratio. Not a test: `cargo bench -p concord-backend-opencl --bench opencl_vs_cpu`.
//! Without an OpenCL platform it prints `SKIP opencl: <reason>` and exits successfully.
use std::sync::Arc;
use std::time::{Duration, Instant};

use concord_core::convert::f32_to_bf16;
use concord_core::DType;
use concord_ops::{Backend, Buffer, Matmul, MlaDecode, Op, RmsNorm, TensorArg, TensorDesc};

/// xorshift64*: deterministic inputs.
struct Rng(u64);

impl Rng {
    fn sym(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (r >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// An input tensor: descriptor and values (rounded to BF16 when the dtype says so).
struct Input {
    desc: TensorDesc,
    bytes: Vec<u8>,
}

fn act(rng: &mut Rng, dtype: DType, shape: &[usize], scale: f32) -> Input {
    let desc = TensorDesc::new(dtype, shape);
    let bytes = (0..desc.numel())
        .flat_map(|_| {
            let v = rng.sym() * scale;
            match dtype {
                DType::BF16 => f32_to_bf16(v).to_le_bytes().to_vec(),
                _ => v.to_le_bytes().to_vec(),
            }
        })
        .collect();
    Input { desc, bytes }
}

fn positions(t: usize, p: u32) -> Input {
    Input {
        desc: TensorDesc::new(DType::U32, [t]),
        bytes: (0..t as u32).flat_map(|i| (p + i).to_le_bytes()).collect(),
    }
}

/// Mean time of one launch (after a warm-up launch), at least `min_iters` launches and
/// about `budget` of wall time; the output bytes of the last launch.
fn time(
    backend: &Arc<dyn Backend>,
    op: &Op,
    inputs: &[Input],
    budget: Duration,
    min_iters: u32,
) -> (Duration, Vec<u8>) {
    let descs: Vec<TensorDesc> = inputs.iter().map(|i| i.desc.clone()).collect();
    let out_desc = op.infer(&descs).expect("valid case").remove(0);
    let bufs: Vec<Buffer> = inputs
        .iter()
        .map(|i| backend.upload(&i.bytes).expect("upload"))
        .collect();
    let out = backend.alloc(out_desc.bytes()).expect("alloc");
    let ins: Vec<TensorArg> = bufs
        .iter()
        .zip(inputs)
        .map(|(b, i)| TensorArg::new(b, i.desc.dtype, i.desc.shape.clone()))
        .collect();
    let outs = [TensorArg::new(&out, out_desc.dtype, out_desc.shape.clone())];
    let prepared = backend.prepare(op).expect("prepare");
    backend.launch(&prepared, &ins, &outs).expect("launch");
    backend.synchronize().expect("sync");
    let start = Instant::now();
    let mut n = 0u32;
    while n < min_iters || start.elapsed() < budget {
        backend.launch(&prepared, &ins, &outs).expect("launch");
        n += 1;
        if n & 7 == 0 {
            backend.synchronize().expect("sync");
        }
    }
    backend.synchronize().expect("sync");
    let per = start.elapsed() / n;
    let mut bytes = vec![0u8; out_desc.bytes()];
    backend.read(&out, 0, &mut bytes).expect("read");
    (per, bytes)
}

fn main() {
    let cpu = concord_backend_cpu::probe().expect("cpu");
    let cl = match concord_backend_opencl::probe() {
        Ok(b) => b,
        Err(e) => {
            println!("SKIP opencl: {e}");
            return;
        }
    };
    println!("cpu:    {}", cpu.info().device);
    println!("opencl: {} — {}", cl.info().device, cl.info().driver);
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let cases: Vec<(&str, Op, Vec<Input>)> = vec![
        (
            "matmul 16x1024x1024 f32",
            Matmul { out: DType::F32 }.into(),
            vec![
                act(&mut rng, DType::F32, &[16, 1024], 1.0),
                act(&mut rng, DType::F32, &[1024, 1024], 0.05),
            ],
        ),
        (
            "matmul 1x7168x2048 bf16",
            Matmul { out: DType::BF16 }.into(),
            vec![
                act(&mut rng, DType::BF16, &[1, 7168], 1.0),
                act(&mut rng, DType::BF16, &[2048, 7168], 0.05),
            ],
        ),
        (
            "rms_norm 64x7168 f32",
            RmsNorm {
                eps: 1e-6,
                out: DType::F32,
            }
            .into(),
            vec![
                act(&mut rng, DType::F32, &[64, 7168], 2.0),
                act(&mut rng, DType::F32, &[7168], 1.0),
            ],
        ),
        (
            "mla_decode T=1 N=16 R=512 S=1024 bf16",
            MlaDecode {
                nope_dim: 128,
                v_dim: 128,
                scale: 0.0721,
                out: DType::BF16,
            }
            .into(),
            vec![
                act(&mut rng, DType::BF16, &[1, 16, 192], 1.0),
                act(&mut rng, DType::BF16, &[1, 16, 64], 1.0),
                act(&mut rng, DType::BF16, &[16 * 256, 512], 0.05),
                act(&mut rng, DType::BF16, &[1024, 512], 1.0),
                act(&mut rng, DType::BF16, &[1024, 64], 1.0),
                positions(1, 1023),
            ],
        ),
    ];
    println!(
        "{:<40} {:>12} {:>12} {:>16}",
        "op", "cpu", "opencl", "opencl / cpu"
    );
    // `cargo bench … -- matmul` runs only the cases whose name contains "matmul".
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for (name, op, inputs) in &cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let budget = Duration::from_millis(1500);
        let (tc, want) = time(&cpu, op, inputs, budget, 3);
        let (to, got) = time(&cl, op, inputs, budget, 3);
        let same = if want == got {
            "bit-identical"
        } else {
            "DIFFERENT BITS"
        };
        println!(
            "{name:<40} {:>9.3} ms {:>9.3} ms {:>15.2}x  {same}",
            tc.as_secs_f64() * 1e3,
            to.as_secs_f64() * 1e3,
            to.as_secs_f64() / tc.as_secs_f64()
        );
    }
}
