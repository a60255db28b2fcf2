//! Argument checks shared by the ops' shape inference.
use concord_core::{DType, Error, Result};

use crate::TensorDesc;

/// Activation dtypes: what flows between ops.
pub const ACTIVATION: &[DType] = &[DType::F32, DType::BF16];
/// Dense weight dtypes.
pub const DENSE_WEIGHT: &[DType] = &[DType::F32, DType::BF16];

/// Fails unless exactly `n` inputs were given.
pub fn arity<'a>(op: &str, inputs: &'a [TensorDesc], n: usize) -> Result<&'a [TensorDesc]> {
    if inputs.len() != n {
        return Err(Error::invalid(format!(
            "{op}: expected {n} inputs, got {}",
            inputs.len()
        )));
    }
    Ok(inputs)
}

/// Fails unless `out` is an activation dtype.
pub fn activation_out(op: &str, out: DType) -> Result<()> {
    if !ACTIVATION.contains(&out) {
        return Err(Error::invalid(format!(
            "{op}: output dtype {out} is not F32 or BF16"
        )));
    }
    Ok(())
}

/// ⌈a / b⌉.
pub const fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}
