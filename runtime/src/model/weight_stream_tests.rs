//! Slice-by-slice conversion writes exactly the bytes of the whole-tensor conversion (the
//! loader's former path: `weight_f32` + `encode`, `quantize_block_fp8`), and its errors are
//! the whole tensor's (index and coordinates in the tensor, not in a slice).

use std::collections::HashMap;
use std::path::Path;

use concord_core::convert::{f32_to_bf16, f32_to_e4m3_satfinite};
use concord_core::DType;
use concord_loader::Checkpoint;
use concord_ops::TensorDesc;
use safetensors::tensor::TensorView as StView;
use safetensors::Dtype;

use super::{write_dense_in_slices, write_fp8_in_slices, Destination};
use crate::exec::Executor;
use crate::host_convert;

const ROWS: usize = 37;
const COLS: usize = 50;
const BLOCK: [usize; 2] = [8, 16];
/// One row of f32 values per slice: every tensor below is cut into many slices.
const TINY_SLICE: usize = COLS * 4;

/// Deterministic values in [-2, 2) (an LCG; any fixed spread of magnitudes will do).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn bf16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| f32_to_bf16(*x).to_le_bytes())
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A checkpoint directory with the test tensors: BF16, F32, FP8 + scales, and a BF16 tensor
/// with one NaN at row 30, column 7.
fn write_checkpoint(dir: &Path) {
    let mut tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        (
            "w_bf16",
            Dtype::BF16,
            vec![ROWS, COLS],
            bf16_bytes(&values(ROWS * COLS, 1)),
        ),
        (
            "w_f32",
            Dtype::F32,
            vec![ROWS, COLS],
            f32_bytes(&values(ROWS * COLS, 2)),
        ),
    ];
    let codes: Vec<u8> = values(ROWS * COLS, 3)
        .iter()
        .map(|v| f32_to_e4m3_satfinite(v * 100.0))
        .collect();
    tensors.push(("w_fp8", Dtype::F8_E4M3, vec![ROWS, COLS], codes));
    let scale_shape = vec![ROWS.div_ceil(BLOCK[0]), COLS.div_ceil(BLOCK[1])];
    let scales: Vec<f32> = values(scale_shape[0] * scale_shape[1], 4)
        .iter()
        .map(|v| v.abs() * 0.01 + 1e-4)
        .collect();
    tensors.push((
        "w_fp8_scale_inv",
        Dtype::F32,
        scale_shape,
        f32_bytes(&scales),
    ));
    let mut with_nan = values(ROWS * COLS, 5);
    with_nan[30 * COLS + 7] = f32::NAN;
    tensors.push((
        "w_nan",
        Dtype::BF16,
        vec![ROWS, COLS],
        bf16_bytes(&with_nan),
    ));
    let views: HashMap<String, StView> = tensors
        .iter()
        .map(|(n, d, s, b)| ((*n).to_owned(), StView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(&views, None, &dir.join("model.safetensors")).unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    ckpt: Checkpoint,
    exec: Executor,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path());
    let ckpt = Checkpoint::open(dir.path()).unwrap();
    let exec = Executor::new(crate::open_backend("cpu").unwrap());
    Fixture {
        _dir: dir,
        ckpt,
        exec,
    }
}

impl Fixture {
    /// The bytes the sliced dense conversion of `name` writes (after 3 bytes of padding, so
    /// the destination offset is exercised too).
    fn sliced_dense(&self, name: &str, dtype: DType) -> concord_core::Result<Vec<u8>> {
        let view = self.ckpt.tensor(name)?;
        let scale = self.ckpt.get(&format!("{name}_scale_inv"));
        let bytes = ROWS * COLS * dtype.size_in_bytes();
        let tensor = self.exec.alloc(TensorDesc::new(DType::U8, [bytes + 3]))?;
        let dst = Destination {
            exec: &self.exec,
            tensor: &tensor,
            offset: 3,
        };
        write_dense_in_slices(
            &dst,
            &self.ckpt,
            &view,
            scale.as_ref(),
            BLOCK,
            dtype,
            TINY_SLICE,
        )?;
        let mut out = vec![0u8; bytes + 3];
        self.exec.backend().read(&tensor.buffer, 0, &mut out)?;
        Ok(out[3..].to_vec())
    }

    /// The former whole-tensor conversion.
    fn whole_dense(&self, name: &str, dtype: DType) -> concord_core::Result<Vec<u8>> {
        let view = self.ckpt.tensor(name)?;
        let scale = self.ckpt.get(&format!("{name}_scale_inv"));
        let values = host_convert::weight_f32(&view, scale.as_ref(), BLOCK)?;
        host_convert::encode(&values, dtype)
    }

    fn sliced_fp8(&self, name: &str) -> (Vec<u8>, Vec<f32>) {
        let view = self.ckpt.tensor(name).unwrap();
        let scale = self.ckpt.get(&format!("{name}_scale_inv"));
        let tensor = self
            .exec
            .alloc(TensorDesc::new(DType::F8E4M3, [ROWS, COLS]))
            .unwrap();
        let dst = Destination {
            exec: &self.exec,
            tensor: &tensor,
            offset: 0,
        };
        let scales =
            write_fp8_in_slices(&dst, &self.ckpt, &view, scale.as_ref(), BLOCK, TINY_SLICE)
                .unwrap();
        let mut codes = vec![0u8; ROWS * COLS];
        self.exec
            .backend()
            .read(&tensor.buffer, 0, &mut codes)
            .unwrap();
        (codes, scales)
    }
}

#[test]
fn dense_slices_write_the_whole_conversions_bytes() {
    let f = fixture();
    for name in ["w_bf16", "w_f32", "w_fp8"] {
        for dtype in [DType::BF16, DType::F32] {
            let whole = f.whole_dense(name, dtype).unwrap();
            assert_eq!(
                f.sliced_dense(name, dtype).unwrap(),
                whole,
                "{name} as {dtype}"
            );
        }
    }
}

#[test]
fn fp8_slices_write_the_stored_codes_and_the_whole_quantization() {
    let f = fixture();
    let stored = f.ckpt.tensor("w_fp8").unwrap();
    let (codes, scales) = f.sliced_fp8("w_fp8");
    assert_eq!(codes, stored.data);
    assert_eq!(
        scales,
        f.ckpt.tensor("w_fp8_scale_inv").unwrap().to_f32().unwrap()
    );
    for name in ["w_bf16", "w_f32"] {
        let values = f.ckpt.tensor(name).unwrap().to_f32().unwrap();
        let whole = host_convert::quantize_block_fp8(&values, ROWS, COLS, BLOCK);
        let (codes, scales) = f.sliced_fp8(name);
        assert_eq!(codes, whole.codes, "{name} codes");
        assert_eq!(scales, whole.scales, "{name} scales");
    }
}

#[test]
fn a_bad_value_is_reported_at_its_place_in_the_whole_tensor() {
    let f = fixture();
    let sliced = f
        .sliced_dense("w_nan", DType::BF16)
        .unwrap_err()
        .to_string();
    assert!(sliced.contains("[30, 7]"), "{sliced}");
    assert_eq!(
        sliced,
        f.whole_dense("w_nan", DType::BF16).unwrap_err().to_string()
    );
}
