//! The op-level cases, as data: op × activation dtype × weight format × shape, with the
//! inputs described by how a seeded generator fills them (so a failure replays from its seed).

use std::ops::Range;

use concord_core::convert::{f32_to_bf16, f32_to_e4m3_satfinite};
use concord_core::DType;
use concord_ops::*;

use crate::rng::Rng;

mod attention;
mod elementwise;
mod fp8;
mod matmul;
mod moe;
mod sample;

use attention::{mla_decode, mla_prefill, rope};
use elementwise::{add, embedding, gather_rows, rms_norm, scatter_rows, slice_columns, swiglu};
use fp8::{block_fp8_matmul, fp8_act_quant};
use matmul::matmul;
use moe::{moe_experts, moe_route};
use sample::{penalize, sample};

/// How an input's elements are drawn.
#[derive(Debug, Clone)]
pub enum Fill {
    /// Uniform in [-scale, scale).
    Uniform(f32),
    /// Uniform in [-scale, scale) with about one in `every` replaced by one of [`EXTREMES`].
    Extremes {
        /// Range of the ordinary values.
        scale: f32,
        /// One extreme value per this many elements, on average.
        every: usize,
    },
    /// Uniform in [floor, floor + scale) (scales, probabilities).
    Positive {
        /// Width of the range.
        scale: f32,
        /// Smallest value.
        floor: f32,
    },
    /// Exactly these values.
    Values(Vec<f32>),
    /// U32 uniform in 0..bound.
    Ids(u32),
    /// Exactly these U32 values.
    U32s(Vec<u32>),
    /// Random F8_E4M3 codes, never NaN.
    E4m3,
    /// Uniform random bytes, one per element (U8).
    Bytes,
}

/// A change applied after filling: a range of elements set to a value or scaled.
#[derive(Debug, Clone)]
pub enum Patch {
    /// `x[range] = value`.
    Set(Range<usize>, f32),
    /// `x[range] *= factor`.
    Scale(Range<usize>, f32),
}

/// One input tensor of a case.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// Dtype and shape.
    pub desc: TensorDesc,
    /// How the values are drawn.
    pub fill: Fill,
    /// Applied in order after the fill.
    pub patches: Vec<Patch>,
}

/// One output of a case: its descriptor and, for ops that update their output in place
/// (`scatter_rows`), what it holds before the launch.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// Dtype and shape.
    pub desc: TensorDesc,
    /// Initial contents; `None` = a fixed byte pattern.
    pub init: Option<InputSpec>,
}

/// One op-level conformance case.
#[derive(Debug, Clone)]
pub struct OpCase {
    /// Unique, shell-safe name: `op/shape/dtypes[/variant]`.
    pub name: String,
    /// The op with its parameters.
    pub op: Op,
    /// Inputs in the op's order.
    pub inputs: Vec<InputSpec>,
    /// Outputs in the op's order.
    pub outputs: Vec<OutputSpec>,
    /// The dtype asked of `Backend::supports` (weights for matmuls, activations otherwise).
    pub support_dtype: DType,
}

/// Values that stress conversions and quantization: signed zeros, the e4m3 limit ±448 and the
/// saturation points around it, huge values, subnormals, infinities.
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

impl InputSpec {
    /// An input of `dtype` and `shape` filled by `fill`.
    pub fn new(dtype: DType, shape: &[usize], fill: Fill) -> Self {
        InputSpec {
            desc: TensorDesc::new(dtype, shape),
            fill,
            patches: Vec::new(),
        }
    }
    /// The same input with one more patch.
    pub fn patch(mut self, p: Patch) -> Self {
        self.patches.push(p);
        self
    }

    /// Draws the bytes of this input from `rng`.
    pub fn materialize(&self, rng: &mut Rng) -> Vec<u8> {
        let n = self.desc.numel();
        match (&self.fill, self.desc.dtype) {
            (Fill::Ids(bound), _) => (0..n)
                .flat_map(|_| (rng.below(*bound as usize) as u32).to_le_bytes())
                .collect(),
            (Fill::U32s(v), _) => {
                assert_eq!(v.len(), n, "{:?}", self.desc);
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            }
            (Fill::Bytes, _) => (0..n).map(|_| rng.below(256) as u8).collect(),
            (Fill::E4m3, _) => {
                let mut codes: Vec<u8> = (0..n)
                    .map(|_| loop {
                        let c = rng.below(256) as u8;
                        if c & 0x7F != 0x7F {
                            break c;
                        }
                    })
                    .collect();
                for p in &self.patches {
                    match p {
                        Patch::Set(r, v) => {
                            codes[r.clone()].fill(f32_to_e4m3_satfinite(*v));
                        }
                        Patch::Scale(..) => {}
                    }
                }
                codes
            }
            (fill, dtype) => {
                let mut v: Vec<f32> = match fill {
                    Fill::Uniform(s) => (0..n).map(|_| rng.sym(*s)).collect(),
                    Fill::Extremes { scale, every } => (0..n)
                        .map(|_| {
                            if rng.below(*every) == 0 {
                                EXTREMES[rng.below(EXTREMES.len())]
                            } else {
                                rng.sym(*scale)
                            }
                        })
                        .collect(),
                    Fill::Positive { scale, floor } => {
                        (0..n).map(|_| rng.unit() * scale + floor).collect()
                    }
                    Fill::Values(v) => {
                        assert_eq!(v.len(), n, "{:?}", self.desc);
                        v.clone()
                    }
                    _ => unreachable!(),
                };
                for p in &self.patches {
                    match p {
                        Patch::Set(r, x) => v[r.clone()].fill(*x),
                        Patch::Scale(r, f) => v[r.clone()].iter_mut().for_each(|e| *e *= f),
                    }
                }
                match dtype {
                    DType::BF16 => v
                        .iter()
                        .flat_map(|x| f32_to_bf16(*x).to_le_bytes())
                        .collect(),
                    DType::F8E4M3 => v.iter().map(|x| f32_to_e4m3_satfinite(*x)).collect(),
                    _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                }
            }
        }
    }
}

impl OutputSpec {
    /// An output pre-filled with a fixed pattern.
    pub fn new(dtype: DType, shape: &[usize]) -> Self {
        OutputSpec {
            desc: TensorDesc::new(dtype, shape),
            init: None,
        }
    }
}

const ACTS: [DType; 2] = [DType::F32, DType::BF16];

fn short(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F8E4M3 => "e4m3",
        DType::U32 => "u32",
        DType::U8 => "u8",
        _ => "other",
    }
}

fn act(d: DType, shape: &[usize], fill: Fill) -> InputSpec {
    InputSpec::new(d, shape, fill)
}

fn case(
    name: String,
    op: impl Into<Op>,
    support_dtype: DType,
    inputs: Vec<InputSpec>,
    outputs: Vec<OutputSpec>,
) -> OpCase {
    OpCase {
        name,
        op: op.into(),
        inputs,
        outputs,
        support_dtype,
    }
}

/// Every op-level case, in catalogue order.
pub fn op_cases() -> Vec<OpCase> {
    let mut c = Vec::new();
    embedding(&mut c);
    rms_norm(&mut c);
    matmul(&mut c);
    fp8_act_quant(&mut c);
    block_fp8_matmul(&mut c);
    rope(&mut c);
    mla_prefill(&mut c);
    mla_decode(&mut c);
    moe_route(&mut c);
    moe_experts(&mut c);
    swiglu(&mut c);
    add(&mut c);
    slice_columns(&mut c);
    scatter_rows(&mut c);
    gather_rows(&mut c);
    penalize(&mut c);
    sample(&mut c);
    c
}
