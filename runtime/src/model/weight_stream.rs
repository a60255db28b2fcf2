//! Weights converted and written to the backend a slice of rows at a time, each slice's
//! checkpoint pages released once written. Converting whole tensors held the mapped file, the
//! tensor's f32 values, their encoding and the backend's copy at once: peak memory during load
//! was about twice the settled size (docs/benchmarks.md, "load memory"). Slices keep the
//! transient to one slice; the bytes written are exactly those of the whole-tensor conversion.

use concord_core::{DType, Result};
use concord_loader::{Checkpoint, TensorView};

use crate::exec::{DeviceTensor, Executor};
use crate::host_convert;

/// About this many bytes of f32 values per slice (the transient a slice costs).
const SLICE_BYTES: usize = 8 << 20;

/// Rows of a tensor viewed as a matrix: the outermost dimension, and the rest as columns.
fn matrix_dims(view: &TensorView) -> (usize, usize) {
    match view.shape.split_first() {
        Some((&rows, rest)) => (rows, rest.iter().product()),
        None => (1, 1),
    }
}

/// Rows per slice for `cols` columns: whole blocks of `block_rows` rows (one FP8 scale row per
/// block, so a slice's scales are whole rows of the scale tensor), at least one block.
fn rows_per_slice(slice_bytes: usize, cols: usize, block_rows: usize) -> usize {
    let rows = (slice_bytes / 4 / cols.max(1)).max(1);
    (rows / block_rows.max(1)).max(1) * block_rows.max(1)
}

/// Rows `r0..r1` of a matrix view (the same name, so errors name the tensor).
fn row_slice<'a>(view: &TensorView<'a>, shape: &'a [usize; 2], r0: usize) -> TensorView<'a> {
    let row_bytes = shape[1] * view.dtype.size_in_bytes();
    TensorView {
        name: view.name,
        dtype: view.dtype,
        shape,
        data: &view.data[r0 * row_bytes..(r0 + shape[0]) * row_bytes],
        file: view.file,
    }
}

/// True when `view` is a matrix whose bytes match its shape (so row slices are in bounds).
fn sliceable(view: &TensorView) -> bool {
    let (rows, cols) = matrix_dims(view);
    view.shape.len() == 2 && view.data.len() == rows * cols * view.dtype.size_in_bytes()
}

/// True when every value of raw `bytes` of `dtype` (BF16 or F32) is finite.
fn raw_all_finite(bytes: &[u8], dtype: DType) -> bool {
    match dtype {
        DType::BF16 => bytes
            .chunks_exact(2)
            .all(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7F80 != 0x7F80),
        DType::F32 => bytes
            .chunks_exact(4)
            .all(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x7F80_0000 != 0x7F80_0000),
        _ => false,
    }
}

/// Where slices go: a tensor and the byte offset of the weight's first row in it.
pub(crate) struct Destination<'a> {
    pub exec: &'a Executor,
    pub tensor: &'a DeviceTensor,
    pub offset: usize,
}

/// Writes weight `view` (FP8 blocks dequantized with `scale`) converted to `dtype` (F32 or
/// BF16): the bytes of `host_convert::encode(weight_f32(view, scale, block), dtype)`.
pub(crate) fn write_dense(
    dst: &Destination,
    ckpt: &Checkpoint,
    view: &TensorView,
    scale: Option<&TensorView>,
    block: [usize; 2],
    dtype: DType,
) -> Result<()> {
    write_dense_in_slices(dst, ckpt, view, scale, block, dtype, SLICE_BYTES)
}

/// [`write_dense`] with slices of about `slice_bytes` bytes of f32 values.
fn write_dense_in_slices(
    dst: &Destination,
    ckpt: &Checkpoint,
    view: &TensorView,
    scale: Option<&TensorView>,
    block: [usize; 2],
    dtype: DType,
    slice_bytes: usize,
) -> Result<()> {
    let (rows, cols) = matrix_dims(view);
    let out_row = cols * dtype.size_in_bytes();
    let step = rows_per_slice(
        slice_bytes,
        cols,
        if scale.is_some() { block[0] } else { 1 },
    );
    let scale_sliceable = scale.is_none_or(|s| {
        s.shape.len() == 2
            && s.shape[0] == rows.div_ceil(block[0].max(1))
            && s.data.len() == s.shape[0] * s.shape[1] * s.dtype.size_in_bytes()
    });
    if !sliceable(view) || !scale_sliceable || rows <= step {
        // Small, or malformed: the whole-tensor conversion (which names what is wrong).
        let values = host_convert::weight_f32(view, scale, block)?;
        dst.exec.write(
            dst.tensor,
            dst.offset,
            &host_convert::encode(&values, dtype)?,
        )?;
        ckpt.release_pages(view.data);
        return Ok(());
    }
    for r0 in (0..rows).step_by(step) {
        let shape = [step.min(rows - r0), cols];
        let part = row_slice(view, &shape, r0);
        let at = dst.offset + r0 * out_row;
        if scale.is_none() && part.dtype == dtype && raw_all_finite(part.data, dtype) {
            // Stored as wanted and finite: the conversion would give back these very bytes.
            dst.exec.write(dst.tensor, at, part.data)?;
        } else {
            let scale_shape;
            let scale_part = match scale {
                Some(s) => {
                    scale_shape = [shape[0].div_ceil(block[0]), s.shape[1]];
                    Some(row_slice(s, &scale_shape, r0 / block[0]))
                }
                None => None,
            };
            let values = host_convert::weight_f32(&part, scale_part.as_ref(), block)
                .map_err(|slice_error| whole_tensor_error(view, scale, block, slice_error))?;
            dst.exec
                .write(dst.tensor, at, &host_convert::encode(&values, dtype)?)?;
        }
        ckpt.release_pages(part.data);
    }
    Ok(())
}

/// The error the whole tensor's conversion gives (its index and coordinates are the tensor's,
/// not the slice's); `slice_error` if that conversion unexpectedly succeeds.
fn whole_tensor_error(
    view: &TensorView,
    scale: Option<&TensorView>,
    block: [usize; 2],
    slice_error: concord_core::Error,
) -> concord_core::Error {
    host_convert::weight_f32(view, scale, block)
        .err()
        .unwrap_or(slice_error)
}

/// Writes the e4m3fn codes of FP8 weight `view` (as stored, or block-quantized from BF16/F32)
/// and returns its f32 block scales ([⌈rows/b0⌉, ⌈cols/b1⌉]) — the codes and scales of
/// `WeightLoader::fp8_codes`.
pub(crate) fn write_fp8(
    dst: &Destination,
    ckpt: &Checkpoint,
    view: &TensorView,
    scale: Option<&TensorView>,
    block: [usize; 2],
) -> Result<Vec<f32>> {
    write_fp8_in_slices(dst, ckpt, view, scale, block, SLICE_BYTES)
}

/// [`write_fp8`] with slices of about `slice_bytes` bytes of f32 values.
fn write_fp8_in_slices(
    dst: &Destination,
    ckpt: &Checkpoint,
    view: &TensorView,
    scale: Option<&TensorView>,
    block: [usize; 2],
    slice_bytes: usize,
) -> Result<Vec<f32>> {
    let (rows, cols) = matrix_dims(view);
    if !sliceable(view) {
        return Err(concord_core::Error::model(format!(
            "{}: expected a matrix, got {:?}",
            view.name, view.shape
        )));
    }
    if view.dtype == concord_core::DType::F8E4M3 {
        let scale = scale.ok_or_else(|| {
            concord_core::Error::model(format!(
                "{} is F8_E4M3 but has no {}_scale_inv tensor",
                view.name, view.name
            ))
        })?;
        let step = rows_per_slice(slice_bytes, cols, 1) * 4;
        for r0 in (0..rows).step_by(step.max(1)) {
            let shape = [step.min(rows - r0), cols];
            let part = row_slice(view, &shape, r0);
            if host_convert::check_e4m3_codes(part.name, part.shape, part.data).is_err() {
                // Report the code's index in the whole tensor.
                host_convert::check_e4m3_codes(view.name, view.shape, view.data)?;
            }
            dst.exec
                .write(dst.tensor, dst.offset + r0 * cols, part.data)?;
            ckpt.release_pages(part.data);
        }
        let scales = scale.to_f32()?;
        host_convert::check_finite(scale.name, scale.shape, &scales)?;
        return Ok(scales);
    }
    let step = rows_per_slice(slice_bytes, cols, block[0]);
    let mut scales = Vec::with_capacity(rows.div_ceil(block[0]) * cols.div_ceil(block[1]));
    for r0 in (0..rows).step_by(step) {
        let shape = [step.min(rows - r0), cols];
        let part = row_slice(view, &shape, r0);
        let values = part.to_f32()?;
        if host_convert::check_finite(part.name, part.shape, &values).is_err() {
            let whole = view.to_f32()?;
            host_convert::check_finite(view.name, view.shape, &whole)?;
        }
        // Blocks never straddle slices (slices are whole blocks of rows), so each slice
        // quantizes to exactly the whole tensor's codes and scale rows.
        let q = host_convert::quantize_block_fp8(&values, shape[0], cols, block);
        dst.exec
            .write(dst.tensor, dst.offset + r0 * cols, &q.codes)?;
        scales.extend_from_slice(&q.scales);
        ckpt.release_pages(part.data);
    }
    Ok(scales)
}

#[cfg(test)]
#[path = "weight_stream_tests.rs"]
mod tests;
