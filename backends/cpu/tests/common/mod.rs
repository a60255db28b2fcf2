//! Shared helpers for the CPU backend's tests: tensors from host values, one-shot runs, a
//! deterministic random source and small f64 references.
#![allow(dead_code)]

use std::sync::Arc;

use concord_core::convert::{bf16_to_f32, e4m3_to_f32, f32_to_bf16};
use concord_core::{DType, Result};
use concord_ops::{Backend, Buffer, Op, TensorArg, TensorDesc};

/// The backend under test.
pub fn backend() -> Arc<dyn Backend> {
    concord_backend_cpu::probe().expect("the cpu backend always probes")
}

/// A tensor in backend memory.
pub struct T {
    pub buf: Buffer,
    pub desc: TensorDesc,
}

impl T {
    pub fn arg(&self) -> TensorArg<'_> {
        TensorArg::new(&self.buf, self.desc.dtype, self.desc.shape.clone())
    }
}

fn upload(be: &Arc<dyn Backend>, dtype: DType, shape: &[usize], bytes: Vec<u8>) -> T {
    let desc = TensorDesc::new(dtype, shape.to_vec());
    assert_eq!(
        desc.bytes(),
        bytes.len(),
        "host data does not match {shape:?}"
    );
    T {
        buf: be.upload(&bytes).unwrap(),
        desc,
    }
}

/// An F32 tensor.
pub fn f32s(be: &Arc<dyn Backend>, shape: &[usize], v: &[f32]) -> T {
    upload(
        be,
        DType::F32,
        shape,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// A BF16 tensor holding `v` rounded to BF16.
pub fn bf16s(be: &Arc<dyn Backend>, shape: &[usize], v: &[f32]) -> T {
    upload(
        be,
        DType::BF16,
        shape,
        v.iter()
            .flat_map(|x| f32_to_bf16(*x).to_le_bytes())
            .collect(),
    )
}

/// An F32 or BF16 tensor.
pub fn act(be: &Arc<dyn Backend>, dtype: DType, shape: &[usize], v: &[f32]) -> T {
    match dtype {
        DType::F32 => f32s(be, shape, v),
        DType::BF16 => bf16s(be, shape, v),
        d => panic!("not an activation dtype: {d}"),
    }
}

/// A U32 tensor.
pub fn u32s(be: &Arc<dyn Backend>, shape: &[usize], v: &[u32]) -> T {
    upload(
        be,
        DType::U32,
        shape,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// A U8 tensor.
pub fn u8s(be: &Arc<dyn Backend>, shape: &[usize], v: &[u8]) -> T {
    upload(be, DType::U8, shape, v.to_vec())
}

/// An F32 tensor of raw bit patterns.
pub fn f32_bits(be: &Arc<dyn Backend>, shape: &[usize], v: &[u32]) -> T {
    upload(
        be,
        DType::F32,
        shape,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// A BF16 tensor of raw bit patterns.
pub fn bf16_bits(be: &Arc<dyn Backend>, shape: &[usize], v: &[u16]) -> T {
    upload(
        be,
        DType::BF16,
        shape,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// An F8_E4M3 tensor of raw codes.
pub fn e4m3s(be: &Arc<dyn Backend>, shape: &[usize], v: &[u8]) -> T {
    upload(be, DType::F8E4M3, shape, v.to_vec())
}

/// One output read back.
pub struct Got {
    pub dtype: DType,
    pub bytes: Vec<u8>,
}

impl Got {
    /// Values widened to f32 (F32, BF16 or F8_E4M3).
    pub fn f32(&self) -> Vec<f32> {
        match self.dtype {
            DType::F32 => self
                .bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            DType::BF16 => self
                .bytes
                .chunks_exact(2)
                .map(|c| bf16_to_f32(u16::from_le_bytes(c.try_into().unwrap())))
                .collect(),
            DType::F8E4M3 => self.bytes.iter().map(|b| e4m3_to_f32(*b)).collect(),
            d => panic!("not a float dtype: {d}"),
        }
    }
    /// Values as u32.
    pub fn u32(&self) -> Vec<u32> {
        self.bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    /// Bit patterns of the f32 values (F32 or BF16 widened), for exact comparison.
    pub fn bits(&self) -> Vec<u32> {
        self.f32().iter().map(|v| v.to_bits()).collect()
    }
}

/// Runs `op` once, allocating outputs as `op.infer` describes them, and reads them back.
pub fn run(be: &Arc<dyn Backend>, op: impl Into<Op>, inputs: &[&T]) -> Result<Vec<Got>> {
    let op = op.into();
    let descs: Vec<TensorDesc> = inputs.iter().map(|t| t.desc.clone()).collect();
    let outs = op.infer(&descs)?;
    let bufs: Vec<Buffer> = outs
        .iter()
        .map(|d| be.alloc(d.bytes()))
        .collect::<Result<_>>()?;
    let in_args: Vec<TensorArg> = inputs.iter().map(|t| t.arg()).collect();
    let out_args: Vec<TensorArg> = bufs
        .iter()
        .zip(&outs)
        .map(|(b, d)| TensorArg::new(b, d.dtype, d.shape.clone()))
        .collect();
    be.run(&op, &in_args, &out_args)?;
    Ok(bufs
        .iter()
        .zip(&outs)
        .map(|(b, d)| {
            let mut bytes = vec![0u8; d.bytes()];
            be.read(b, 0, &mut bytes).unwrap();
            Got {
                dtype: d.dtype,
                bytes,
            }
        })
        .collect())
}

/// Runs a single-output op.
pub fn run1(be: &Arc<dyn Backend>, op: impl Into<Op>, inputs: &[&T]) -> Got {
    run(be, op, inputs).unwrap().swap_remove(0)
}

/// SplitMix64: a deterministic source of test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    /// n values uniform in [-1, 1).
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform(-1.0, 1.0)).collect()
    }
    /// n values uniform in [-1, 1) rounded to BF16.
    pub fn vec_bf16(&mut self, n: usize) -> Vec<f32> {
        self.vec(n)
            .into_iter()
            .map(concord_core::convert::round_to_bf16)
            .collect()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// n e4m3 codes drawn from every finite value (the NaN codes 0x7F / 0xFF are redrawn).
    pub fn e4m3_codes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| loop {
                let c = self.next_u64() as u8;
                if c & 0x7F != 0x7F {
                    break c;
                }
            })
            .collect()
    }
}

/// f64 dot product.
pub fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Asserts |got − want| ≤ rel·max(|want|, floor) for every element.
pub fn assert_close(got: &[f32], want: &[f64], rel: f64, floor: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rel * w.abs().max(floor);
        assert!(
            (*g as f64 - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (tolerance {tol})"
        );
    }
}

/// Whether a test of an AVX-512F kernel must skip (printed as SKIP with the reason): this
/// CPU lacks AVX-512F.
pub fn skip_without_avx512f() -> bool {
    if concord_backend_cpu::testing::avx512f_available() {
        return false;
    }
    eprintln!("SKIP: this CPU lacks AVX-512F");
    true
}

/// Shapes from the environment variable `var` as `a,b,c;a,b,c;…` (each shape N numbers), for benches that time chosen shapes; None when it is unset. Panics on a
/// malformed list (a bench's input, named in the message).
pub fn env_shapes<const N: usize>(var: &str) -> Option<Vec<[usize; N]>> {
    let list = std::env::var(var).ok()?;
    Some(
        list.split(';')
            .map(|shape| {
                let v: Vec<usize> = shape
                    .split(',')
                    .map(|x| {
                        x.trim()
                            .parse()
                            .unwrap_or_else(|_| panic!("{var}: '{shape}'"))
                    })
                    .collect();
                v.try_into()
                    .unwrap_or_else(|_| panic!("{var}: '{shape}' is not {N} numbers"))
            })
            .collect(),
    )
}
