//! The conformance harness: runs one op on the CPU reference and on OpenCL with the same
//! inputs and compares the output bytes (NaN matches any NaN, docs/numerics.md §1).
use std::sync::{Arc, Mutex, OnceLock};

use concord_core::convert::{bf16_to_f32, e4m3_to_f32, f32_to_bf16};
use concord_core::{DType, Error};
use concord_ops::{Backend, KernelMode, Op, TensorArg, TensorDesc};

/// xorshift64* — a tiny seeded generator, so every run sees the same inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [-scale, scale).
    pub fn sym(&mut self, scale: f32) -> f32 {
        (self.unit() * 2.0 - 1.0) * scale
    }
    /// n values uniform in [-scale, scale).
    pub fn vals(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.sym(scale)).collect()
    }
    /// n values in [-scale, scale) with about one in `every` replaced by an extreme value.
    pub fn vals_with_extremes(&mut self, n: usize, scale: f32, every: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                if self.below(every) == 0 {
                    EXTREMES[self.below(EXTREMES.len())]
                } else {
                    self.sym(scale)
                }
            })
            .collect()
    }
    /// n random e4m3fn codes, never NaN (0x7F, 0xFF).
    pub fn e4m3_codes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| loop {
                let c = self.below(256) as u8;
                if c & 0x7F != 0x7F {
                    break c;
                }
            })
            .collect()
    }
    /// n u32 values in 0..bound.
    pub fn ids(&mut self, n: usize, bound: usize) -> Vec<u32> {
        (0..n).map(|_| self.below(bound) as u32).collect()
    }
}

/// Values that stress conversions and quantization: signed zeros, the e4m3 limits and the
/// saturation points around them, huge values, subnormals, infinities.
pub const EXTREMES: [f32; 20] = [
    0.0,
    -0.0,
    448.0,
    -448.0,
    464.0,
    -464.0,
    465.0,
    1e30,
    -1e30,
    f32::MAX,
    -f32::MAX,
    f32::MIN_POSITIVE,
    1e-40,
    -1e-45,
    3.0e-39,
    0.001953125,
    -0.0009765625,
    f32::INFINITY,
    f32::NEG_INFINITY,
    3.3895314e38,
];

/// One input tensor.
#[derive(Clone)]
pub struct Data {
    pub desc: TensorDesc,
    pub bytes: Vec<u8>,
}

impl Data {
    /// F32 or BF16 values (BF16 rounded from the given f32 by RNE).
    pub fn act(dtype: DType, shape: &[usize], v: &[f32]) -> Data {
        assert_eq!(v.len(), shape.iter().product::<usize>());
        let bytes = match dtype {
            DType::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            DType::BF16 => v
                .iter()
                .flat_map(|x| f32_to_bf16(*x).to_le_bytes())
                .collect(),
            d => panic!("not an activation dtype: {d}"),
        };
        Data {
            desc: TensorDesc::new(dtype, shape),
            bytes,
        }
    }
    pub fn f32(shape: &[usize], v: &[f32]) -> Data {
        Data::act(DType::F32, shape, v)
    }
    pub fn u32(shape: &[usize], v: &[u32]) -> Data {
        assert_eq!(v.len(), shape.iter().product::<usize>());
        Data {
            desc: TensorDesc::new(DType::U32, shape),
            bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
    pub fn e4m3(shape: &[usize], codes: Vec<u8>) -> Data {
        assert_eq!(codes.len(), shape.iter().product::<usize>());
        Data {
            desc: TensorDesc::new(DType::F8E4M3, shape),
            bytes: codes,
        }
    }
}

/// An output: its descriptor and the bytes it holds before the launch.
pub struct Out {
    pub desc: TensorDesc,
    pub init: Vec<u8>,
}

impl Out {
    /// An output pre-filled with a fixed pattern.
    pub fn new(dtype: DType, shape: &[usize]) -> Out {
        let desc = TensorDesc::new(dtype, shape);
        let init = (0..desc.bytes())
            .map(|i| (i as u8).wrapping_mul(37) ^ 0xA5)
            .collect();
        Out { desc, init }
    }
    /// An output holding `data` before the launch (scatter_rows' destination).
    pub fn from(data: Data) -> Out {
        Out {
            desc: data.desc,
            init: data.bytes,
        }
    }
}

/// The OpenCL backend shared by every test of the binary, or why there is none.
fn shared() -> &'static Result<Arc<dyn Backend>, String> {
    static BACKEND: OnceLock<Result<Arc<dyn Backend>, String>> = OnceLock::new();
    BACKEND.get_or_init(|| match concord_backend_opencl::probe() {
        Ok(b) => Ok(b),
        Err(Error::Unavailable { reason, .. }) => Err(reason),
        Err(other) => Err(other.to_string()),
    })
}

/// The shared OpenCL backend, or `None` after printing `SKIP opencl: <reason>`; fails instead
/// when `CONCORD_REQUIRE_BACKENDS` names opencl. Every test calls it first.
pub fn opencl() -> Option<Arc<dyn Backend>> {
    match shared() {
        Ok(b) => Some(b.clone()),
        Err(reason) => {
            let required = std::env::var("CONCORD_REQUIRE_BACKENDS").unwrap_or_default();
            if required.split([',', ' ']).any(|n| n.trim() == "opencl") {
                panic!("opencl is required (CONCORD_REQUIRE_BACKENDS={required}) but unavailable: {reason}");
            }
            println!("SKIP opencl: {reason}");
            None
        }
    }
}

pub fn cpu() -> Arc<dyn Backend> {
    static CPU: OnceLock<Arc<dyn Backend>> = OnceLock::new();
    CPU.get_or_init(|| concord_backend_cpu::probe().expect("the cpu backend always probes"))
        .clone()
}

/// Runs `op` on `backend`: every tensor sits at a non-zero offset inside a larger buffer.
/// Returns the output bytes, or the error of the launch or of the reads after it.
pub fn run_on(
    backend: &(dyn Backend + 'static),
    op: &Op,
    inputs: &[Data],
    outputs: &[Out],
) -> Result<Vec<Vec<u8>>, Error> {
    let pad = |i: usize| 8 * (i + 1);
    let mut bufs = Vec::new();
    for (i, d) in inputs.iter().enumerate() {
        let mut bytes = vec![0x5Au8; pad(i)];
        bytes.extend_from_slice(&d.bytes);
        bytes.extend_from_slice(&[0xC3; 8]);
        bufs.push(backend.upload(&bytes)?);
    }
    for (i, o) in outputs.iter().enumerate() {
        let mut bytes = vec![0x3Cu8; pad(i)];
        bytes.extend_from_slice(&o.init);
        bytes.extend_from_slice(&[0x96; 8]);
        bufs.push(backend.upload(&bytes)?);
    }
    let views: Vec<TensorArg> = inputs
        .iter()
        .map(|d| &d.desc)
        .chain(outputs.iter().map(|o| &o.desc))
        .enumerate()
        .map(|(j, desc)| {
            let i = if j < inputs.len() {
                j
            } else {
                j - inputs.len()
            };
            TensorArg {
                buffer: &bufs[j],
                offset: pad(i),
                desc: desc.clone(),
            }
        })
        .collect();
    let (ins, outs) = views.split_at(inputs.len());
    backend.run(op, ins, outs)?;
    let mut results = Vec::new();
    for (i, o) in outputs.iter().enumerate() {
        let buf = &bufs[inputs.len() + i];
        let mut all = vec![0u8; buf.len()];
        backend.read(buf, 0, &mut all)?;
        // The bytes around the view must be untouched.
        assert!(
            all[..pad(i)].iter().all(|&b| b == 0x3C),
            "{}: wrote before output {i}",
            backend.info().name
        );
        assert!(
            all[pad(i) + o.desc.bytes()..].iter().all(|&b| b == 0x96),
            "{}: wrote past output {i}",
            backend.info().name
        );
        results.push(all[pad(i)..pad(i) + o.desc.bytes()].to_vec());
    }
    Ok(results)
}

/// Element `i` of `bytes` as text, and whether it is a NaN.
fn element(dtype: DType, bytes: &[u8], i: usize) -> (String, bool) {
    let es = dtype.size_in_bytes();
    let b = &bytes[i * es..(i + 1) * es];
    match dtype {
        DType::F32 => {
            let v = f32::from_le_bytes(b.try_into().unwrap());
            (format!("{v:e} ({:#010x})", v.to_bits()), v.is_nan())
        }
        DType::BF16 => {
            let h = u16::from_le_bytes(b.try_into().unwrap());
            let v = bf16_to_f32(h);
            (format!("{v:e} ({h:#06x})"), v.is_nan())
        }
        DType::F8E4M3 => {
            let v = e4m3_to_f32(b[0]);
            (format!("{v:e} ({:#04x})", b[0]), v.is_nan())
        }
        _ => (format!("{b:02x?}"), false),
    }
}

/// Asserts identical bytes, element by element, treating any two NaNs as equal.
fn assert_same(case: &str, which: usize, dtype: DType, cpu: &[u8], cl: &[u8]) {
    assert_eq!(cpu.len(), cl.len());
    let es = dtype.size_in_bytes();
    let mut bad = Vec::new();
    for i in 0..cpu.len() / es {
        if cpu[i * es..(i + 1) * es] == cl[i * es..(i + 1) * es] {
            continue;
        }
        let (c, cn) = element(dtype, cpu, i);
        let (o, on) = element(dtype, cl, i);
        if cn && on {
            continue;
        }
        bad.push(format!("  [{i}] cpu {c} opencl {o}"));
    }
    if !bad.is_empty() {
        let n = bad.len();
        bad.truncate(12);
        panic!(
            "{case}: output {which} differs in {n} elements:\n{}",
            bad.join("\n")
        );
    }
}

/// Runs `op` on both backends and asserts identical outputs (or the same error).
pub fn check(case: &str, op: impl Into<Op>, inputs: &[Data], outputs: &[Out]) {
    let Ok(cl) = shared() else { return };
    let op = op.into();
    let want = run_on(cpu().as_ref(), &op, inputs, outputs);
    let got = run_on(cl.as_ref(), &op, inputs, outputs);
    match (want, got) {
        (Ok(want), Ok(got)) => {
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                assert_same(case, i, outputs[i].desc.dtype, w, g);
            }
        }
        (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string(), "{case}: different errors"),
        (Ok(_), Err(g)) => panic!("{case}: opencl failed where the cpu did not: {g}"),
        (Err(w), Ok(_)) => panic!("{case}: the cpu failed ({w}) but opencl did not"),
    }
}

/// Like [`check`], and also asserts that the CPU reports an error.
///
/// Kernels report bad ids at the queue's next read or synchronize, so error cases run one at
/// a time on a backend of their own: another test's read on the shared backend must not
/// receive this error.
pub fn check_error(case: &str, op: impl Into<Op>, inputs: &[Data], outputs: &[Out]) {
    static OWN: OnceLock<Mutex<Arc<dyn Backend>>> = OnceLock::new();
    if shared().is_err() {
        return;
    }
    let own =
        OWN.get_or_init(|| Mutex::new(concord_backend_opencl::probe().expect("probed before")));
    let serial = own.lock().unwrap_or_else(|e| e.into_inner());
    let cl = serial.clone();
    let op = op.into();
    let want = run_on(cpu().as_ref(), &op, inputs, outputs);
    assert!(want.is_err(), "{case}: expected the cpu to fail");
    let got = run_on(cl.as_ref(), &op, inputs, outputs);
    match got {
        Err(g) => assert_eq!(want.unwrap_err().to_string(), g.to_string(), "{case}"),
        Ok(_) => panic!("{case}: opencl did not report the error"),
    }
    // The error was consumed: the backend works normally afterwards.
    cl.synchronize()
        .expect("no stale error after it was reported");
}

/// Both activation dtypes.
pub const ACTS: [DType; 2] = [DType::F32, DType::BF16];

/// The OpenCL backend opened in fast mode (after `opencl()` said one exists).
pub fn fast() -> Arc<dyn Backend> {
    static FAST: OnceLock<Arc<dyn Backend>> = OnceLock::new();
    FAST.get_or_init(|| {
        concord_backend_opencl::probe_mode(KernelMode::Fast).expect("opencl opens in fast mode")
    })
    .clone()
}

/// Σ(y − y_exact)² / Σ y_exact².
pub fn nmse(exact: &[f64], fast: &[f64]) -> f64 {
    let err: f64 = exact.iter().zip(fast).map(|(e, f)| (f - e) * (f - e)).sum();
    let norm: f64 = exact.iter().map(|e| e * e).sum();
    if norm == 0.0 {
        err
    } else {
        err / norm
    }
}
