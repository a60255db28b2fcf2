//! Host-side weight conversions done once at load: exact upcasts, FP8 block dequantization,
//! BF16 rounding, and block quantization of a BF16/F32 checkpoint into FP8.

use concord_core::convert::{e4m3_to_f32, f32_to_bf16, f32_to_e4m3_satfinite, E4M3_MAX};
use concord_core::{DType, Error, Result};
use concord_loader::TensorView;

/// The weight of a projection as exact f32 values: F8 blocks dequantized with their scales.
/// A non-finite scale, or a non-finite value in the result (a NaN/Inf weight, an e4m3fn NaN
/// code, an overflowing scale product), is an error naming the tensor and the first bad index.
pub fn weight_f32(
    weight: &TensorView,
    scale: Option<&TensorView>,
    block: [usize; 2],
) -> Result<Vec<f32>> {
    let values = match (weight.dtype, scale) {
        (DType::F8E4M3, Some(s)) => {
            check_finite(s.name, s.shape, &s.to_f32()?)?;
            concord_loader::dequantize_block_fp8(weight, s, block)?
        }
        (DType::F8E4M3, None) => {
            return Err(Error::model(format!(
                "{} is F8_E4M3 but has no {}_scale_inv tensor",
                weight.name, weight.name
            )))
        }
        _ => weight.to_f32()?,
    };
    check_finite(weight.name, weight.shape, &values)?;
    Ok(values)
}

/// Row-major coordinates of flat index `flat` in `shape`.
fn coordinates(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut coords = vec![0; shape.len()];
    for (c, &d) in coords.iter_mut().zip(shape).rev() {
        if d > 0 {
            *c = flat % d;
            flat /= d;
        }
    }
    coords
}

fn non_finite_error(name: &str, shape: &[usize], index: usize, what: String) -> Error {
    Error::model(format!(
        "tensor `{name}`: {what} at index {index} {:?}; the checkpoint is corrupt",
        coordinates(index, shape)
    ))
}

/// Errors on the first NaN or infinity of `values` (the converted tensor `name` of `shape`).
pub fn check_finite(name: &str, shape: &[usize], values: &[f32]) -> Result<()> {
    // Chunked so the common all-finite case runs as a branch-free reduction.
    const CHUNK: usize = 4096;
    for (c, chunk) in values.chunks(CHUNK).enumerate() {
        if chunk.iter().all(|v| v.is_finite()) {
            continue;
        }
        if let Some(i) = chunk.iter().position(|v| !v.is_finite()) {
            let index = c * CHUNK + i;
            let what = format!("non-finite value {}", chunk[i]);
            return Err(non_finite_error(name, shape, index, what));
        }
    }
    Ok(())
}

/// Errors on the first e4m3fn NaN code (`0x7F`, `0xFF`: the format has no infinities) of the
/// F8_E4M3 tensor `name`.
pub fn check_e4m3_codes(name: &str, shape: &[usize], codes: &[u8]) -> Result<()> {
    match codes.iter().position(|&b| b & 0x7F == 0x7F) {
        Some(index) => {
            let what = format!("e4m3fn NaN code {:#04x}", codes[index]);
            Err(non_finite_error(name, shape, index, what))
        }
        None => Ok(()),
    }
}

/// Encodes f32 values as `dtype` (F32 or BF16) little-endian bytes.
pub fn encode(values: &[f32], dtype: DType) -> Result<Vec<u8>> {
    match dtype {
        DType::F32 => Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::BF16 => Ok(values
            .iter()
            .flat_map(|v| f32_to_bf16(*v).to_le_bytes())
            .collect()),
        other => Err(Error::unsupported(format!("encoding weights as {other}"))),
    }
}

/// FP8 weight bytes and their f32 block scales (`weight_scale_inv` layout).
pub struct BlockFp8 {
    /// e4m3fn codes, [rows, cols].
    pub codes: Vec<u8>,
    /// Multipliers, [⌈rows/b0⌉, ⌈cols/b1⌉].
    pub scales: Vec<f32>,
}

/// `decode(code)·scale` (one rounded f32 product) for every weight of a block-FP8 matrix,
/// the inverse of [`quantize_block_fp8`] up to quantization error.
pub fn dequantize_block_fp8(q: &BlockFp8, rows: usize, cols: usize, block: [usize; 2]) -> Vec<f32> {
    let bc = cols.div_ceil(block[1]);
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let srow = &q.scales[(r / block[0]) * bc..(r / block[0] + 1) * bc];
        for c in 0..cols {
            out.push(e4m3_to_f32(q.codes[r * cols + c]) * srow[c / block[1]]);
        }
    }
    out
}

/// Quantizes an f32 matrix into 128×128-style blocks: scale = amax/448 (1 for an all-zero
/// block), code = e4m3_satfinite(w / scale) — the format DeepSeek's checkpoints use.
pub fn quantize_block_fp8(w: &[f32], rows: usize, cols: usize, block: [usize; 2]) -> BlockFp8 {
    let (br, bc) = (rows.div_ceil(block[0]), cols.div_ceil(block[1]));
    let mut scales = vec![1.0f32; br * bc];
    let mut codes = vec![0u8; rows * cols];
    for bi in 0..br {
        for bj in 0..bc {
            let (r0, r1) = (bi * block[0], ((bi + 1) * block[0]).min(rows));
            let (c0, c1) = (bj * block[1], ((bj + 1) * block[1]).min(cols));
            let mut amax = 0.0f32;
            for r in r0..r1 {
                for v in &w[r * cols + c0..r * cols + c1] {
                    amax = amax.max(v.abs());
                }
            }
            let scale = if amax > 0.0 { amax / E4M3_MAX } else { 1.0 };
            scales[bi * bc + bj] = scale;
            for r in r0..r1 {
                for c in c0..c1 {
                    codes[r * cols + c] = f32_to_e4m3_satfinite(w[r * cols + c] / scale);
                }
            }
        }
    }
    BlockFp8 { codes, scales }
}
