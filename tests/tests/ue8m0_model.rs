//! A checkpoint whose `quantization_config.scale_fmt` is `"ue8m0"` (DeepSeek-V3.1) quantizes
//! every activation of its fp8 forward with power-of-two scales: every `Fp8ActQuant` and every
//! FP8 `MoeExperts` the model launches carries the config's format, and one without
//! `scale_fmt` carries plain f32 scales. The fp8 fixture runs on the CPU backend behind a
//! wrapper that records each launched op.
use std::path::Path;
use std::sync::{Arc, Mutex};

use concord_core::{ActScaleFormat, DType, Result};
use concord_ops::{
    Backend, BackendInfo, Buffer, ExpertWeights, Op, OpKind, Prepared, Support, TensorArg,
};
use concord_runtime::{LoadOptions, LogitRows, Model, Precision};
use concord_tests::fixtures_dir;

/// The CPU backend, recording every op it launches.
struct Recording {
    inner: Arc<dyn Backend>,
    ops: Mutex<Vec<Op>>,
}

impl Backend for Recording {
    fn info(&self) -> &BackendInfo {
        self.inner.info()
    }
    fn supports(&self, kind: OpKind, dtype: DType) -> Support {
        self.inner.supports(kind, dtype)
    }
    fn alloc(&self, bytes: usize) -> Result<Buffer> {
        self.inner.alloc(bytes)
    }
    fn write(&self, dst: &Buffer, offset: usize, src: &[u8]) -> Result<()> {
        self.inner.write(dst, offset, src)
    }
    fn read(&self, src: &Buffer, offset: usize, dst: &mut [u8]) -> Result<()> {
        self.inner.read(src, offset, dst)
    }
    fn prepare(&self, op: &Op) -> Result<Prepared> {
        self.inner.prepare(op)
    }
    fn launch(
        &self,
        prepared: &Prepared,
        inputs: &[TensorArg],
        outputs: &[TensorArg],
    ) -> Result<()> {
        self.ops.lock().unwrap().push(prepared.op.clone());
        self.inner.launch(prepared, inputs, outputs)
    }
    fn synchronize(&self) -> Result<()> {
        self.inner.synchronize()
    }
}

/// The fp8 fixture with `scale_fmt` set as given (removed for `None`).
fn fixture_with_scale_fmt(dir: &Path, scale_fmt: Option<&str>) {
    let src = fixtures_dir().join("fp8_block_scaled");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let config = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let q = cfg["quantization_config"].as_object_mut().unwrap();
    match scale_fmt {
        Some(f) => q.insert("scale_fmt".into(), f.into()),
        None => q.remove("scale_fmt"),
    };
    std::fs::write(&config, cfg.to_string()).unwrap();
}

/// The activation scale formats of the quantizing ops one fp8 prefill and one decode step
/// launch: (Fp8ActQuant formats, FP8 MoeExperts formats), and the last logits.
fn formats_launched(
    scale_fmt: Option<&str>,
) -> (Vec<ActScaleFormat>, Vec<ActScaleFormat>, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    fixture_with_scale_fmt(dir.path(), scale_fmt);
    let recording = Arc::new(Recording {
        inner: concord_runtime::open_backend("cpu").unwrap(),
        ops: Mutex::new(Vec::new()),
    });
    let options = LoadOptions {
        precision: Some(Precision::Fp8),
        max_positions: Some(64),
        mtp: false,
        ..LoadOptions::default()
    };
    let model = Model::load(dir.path(), recording.clone(), &options, &mut |_, _| true).unwrap();
    let mut seq = model.new_sequence(8).unwrap();
    let prompt = [3u32, 17, 42, 99, 7];
    model
        .forward(&mut [&mut seq], &[&prompt], LogitRows::Last)
        .unwrap();
    let logits = model
        .forward(&mut [&mut seq], &[&[11u32]], LogitRows::Last)
        .unwrap()
        .per_sequence
        .remove(0);
    let ops = recording.ops.lock().unwrap();
    let quant = ops
        .iter()
        .filter_map(|op| match op {
            Op::Fp8ActQuant(q) => Some(q.scale_fmt),
            _ => None,
        })
        .collect();
    let experts = ops
        .iter()
        .filter_map(|op| match op {
            Op::MoeExperts(m) => match m.weights {
                ExpertWeights::BlockFp8 { scale_fmt, .. } => Some(scale_fmt),
                ExpertWeights::Dense => None,
            },
            _ => None,
        })
        .collect();
    (quant, experts, logits)
}

#[test]
fn the_config_scale_format_reaches_every_activation_quantization() {
    let (quant, experts, ue8m0_logits) = formats_launched(Some("ue8m0"));
    assert!(
        !quant.is_empty() && !experts.is_empty(),
        "no fp8 op launched"
    );
    assert!(
        quant.iter().all(|&f| f == ActScaleFormat::Ue8m0),
        "{quant:?}"
    );
    assert!(
        experts.iter().all(|&f| f == ActScaleFormat::Ue8m0),
        "{experts:?}"
    );

    let (quant, experts, plain_logits) = formats_launched(None);
    assert!(
        !quant.is_empty() && !experts.is_empty(),
        "no fp8 op launched"
    );
    assert!(quant.iter().all(|&f| f == ActScaleFormat::F32), "{quant:?}");
    assert!(
        experts.iter().all(|&f| f == ActScaleFormat::F32),
        "{experts:?}"
    );
    // Power-of-two scales quantize differently: the logits move.
    assert_ne!(ue8m0_logits, plain_logits);
}
