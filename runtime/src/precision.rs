use concord_core::{DType, Error, Result};
use serde::Serialize;

/// How the model computes (docs/numerics.md §Modes): weight storage and activation rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Precision {
    /// Every weight upcast exactly to f32, f32 activations, no rounding between ops.
    F32,
    /// BF16 weights (FP8 blocks dequantized at load), activations rounded to BF16 between ops.
    Bf16,
    /// FP8 block-scaled projections with per-token activation quantization (W8A8), BF16 elsewhere.
    Fp8,
}

impl Precision {
    /// Dtype activations are rounded to between ops.
    pub fn activation(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 | Precision::Fp8 => DType::BF16,
        }
    }
    /// Dtype of unquantized weights (norms, embeddings, router, dense projections).
    pub fn dense_weight(self) -> DType {
        self.activation()
    }
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Fp8 => "fp8",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "fp8" | "f8" | "f8_e4m3" => Ok(Precision::Fp8),
            other => Err(Error::invalid(format!(
                "unknown precision '{other}' (expected f32, bf16 or fp8)"
            ))),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
