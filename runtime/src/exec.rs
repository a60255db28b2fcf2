use std::sync::{Arc, Mutex};

use concord_core::{DType, Result};
use concord_ops::{Backend, Buffer, Op, Prepared, TensorArg, TensorDesc};

use crate::profile::{Activity, OpProfile, Profiler};

/// A tensor living in one backend's memory.
pub struct DeviceTensor {
    /// The memory.
    pub buffer: Buffer,
    /// Element type and shape.
    pub desc: TensorDesc,
}

impl DeviceTensor {
    /// A view of the whole tensor.
    pub fn arg(&self) -> TensorArg<'_> {
        TensorArg {
            buffer: &self.buffer,
            offset: 0,
            desc: self.desc.clone(),
        }
    }
    /// Rows `first..first+count` of the outermost dimension.
    pub fn rows(&self, first: usize, count: usize) -> TensorArg<'_> {
        self.arg().rows(first, count)
    }
}

/// Runs ops on one backend: prepares each distinct op once, allocates outputs, launches.
pub struct Executor {
    backend: Arc<dyn Backend>,
    prepared: Mutex<Vec<Prepared>>,
    /// Per-op timing, off unless [`Executor::profile_start`] turned it on.
    profiler: Profiler,
    /// Whether a timed launch or copy is followed by a synchronize (a device backend queues
    /// work, so only a sync makes its wall time the kernel's).
    sync_when_profiling: bool,
}

impl Executor {
    /// An executor over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let sync_when_profiling = backend.info().name != "cpu";
        Executor {
            backend,
            prepared: Mutex::new(Vec::new()),
            profiler: Profiler::default(),
            sync_when_profiling,
        }
    }

    /// Starts timing every launch and the work around it (a fresh tally).
    pub fn profile_start(&self) {
        self.profiler.start();
    }

    /// Stops timing and returns what was timed since [`Executor::profile_start`].
    pub fn profile_stop(&self) -> OpProfile {
        OpProfile::from_tallies([self.profiler.stop()], self.sync_when_profiling)
    }

    /// Stops timing and returns the raw tally (to merge several executors').
    pub(crate) fn profile_tally(
        &self,
    ) -> std::collections::HashMap<Activity, crate::profile::ActivityTime> {
        self.profiler.stop()
    }

    /// Whether the profiler is on.
    pub(crate) fn profiling(&self) -> bool {
        self.profiler.enabled()
    }

    /// Adds one occurrence of `activity` that took `elapsed` to the profile.
    pub(crate) fn profile_add(&self, activity: Activity, elapsed: std::time::Duration) {
        self.profiler.add(activity, elapsed)
    }

    /// Whether timed work is followed by a device sync.
    pub(crate) fn syncs_when_profiling(&self) -> bool {
        self.sync_when_profiling
    }

    /// Runs `work` as `activity` under the profiler (a sync after it on a device backend).
    #[inline]
    fn timed<R>(&self, activity: impl FnOnce() -> Activity, work: impl FnOnce() -> R) -> R {
        self.profiler.time(
            activity,
            || {
                if self.sync_when_profiling {
                    if let Err(e) = self.backend.synchronize() {
                        tracing::warn!(error = %e, "synchronize while profiling failed");
                    }
                }
            },
            work,
        )
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    fn prepared(&self, op: &Op) -> Result<Prepared> {
        let mut cache = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.iter().find(|p| &p.op == op) {
            return Ok(p.clone());
        }
        let p = self.backend.prepare(op)?;
        cache.push(p.clone());
        Ok(p)
    }

    /// Runs `op` on `inputs`, allocating and returning its outputs.
    pub fn apply(&self, op: impl Into<Op>, inputs: &[TensorArg]) -> Result<Vec<DeviceTensor>> {
        let op = op.into();
        let tensors = self.timed(
            || Activity::OutputAlloc,
            || {
                let descs: Vec<TensorDesc> = inputs.iter().map(|a| a.desc.clone()).collect();
                op.infer(&descs)?
                    .into_iter()
                    .map(|desc| {
                        Ok(DeviceTensor {
                            buffer: self.backend.alloc(desc.bytes())?,
                            desc,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            },
        )?;
        let out_args: Vec<TensorArg> = tensors.iter().map(|t| t.arg()).collect();
        self.launch(&op, inputs, &out_args)?;
        Ok(tensors)
    }

    /// Runs a single-output op.
    pub fn apply1(&self, op: impl Into<Op>, inputs: &[TensorArg]) -> Result<DeviceTensor> {
        Ok(self.apply(op, inputs)?.swap_remove(0))
    }

    /// Runs `op` writing into caller-provided outputs.
    pub fn launch(&self, op: &Op, inputs: &[TensorArg], outputs: &[TensorArg]) -> Result<()> {
        let prepared = self.timed(|| Activity::Lookup, || self.prepared(op))?;
        self.timed(
            || Activity::launch(op, inputs),
            || self.backend.launch(&prepared, inputs, outputs),
        )
    }

    /// Allocates a zero-filled tensor.
    pub fn zeros(&self, desc: TensorDesc) -> Result<DeviceTensor> {
        self.timed(
            || Activity::Upload,
            || {
                let buffer = self.backend.alloc(desc.bytes())?;
                self.backend.write(&buffer, 0, &vec![0u8; desc.bytes()])?;
                Ok(DeviceTensor { buffer, desc })
            },
        )
    }

    /// Allocates a tensor whose bytes the caller writes next (with [`Executor::write`]).
    pub fn alloc(&self, desc: TensorDesc) -> Result<DeviceTensor> {
        self.timed(
            || Activity::OutputAlloc,
            || {
                let buffer = self.backend.alloc(desc.bytes())?;
                Ok(DeviceTensor { buffer, desc })
            },
        )
    }

    /// Writes host `bytes` into `tensor` from byte `offset` on.
    pub fn write(&self, tensor: &DeviceTensor, offset: usize, bytes: &[u8]) -> Result<()> {
        self.timed(
            || Activity::Upload,
            || self.backend.write(&tensor.buffer, offset, bytes),
        )
    }

    /// Uploads host bytes as a tensor.
    pub fn upload(&self, desc: TensorDesc, bytes: &[u8]) -> Result<DeviceTensor> {
        debug_assert_eq!(desc.bytes(), bytes.len());
        self.timed(
            || Activity::Upload,
            || {
                let buffer = self.backend.alloc(bytes.len())?;
                self.backend.write(&buffer, 0, bytes)?;
                Ok(DeviceTensor { buffer, desc })
            },
        )
    }

    /// Uploads u32 values (ids, positions, slots).
    pub fn upload_u32(&self, values: &[u32]) -> Result<DeviceTensor> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.upload(TensorDesc::new(DType::U32, [values.len()]), &bytes)
    }

    /// Uploads f32 values with a shape.
    pub fn upload_f32(&self, shape: &[usize], values: &[f32]) -> Result<DeviceTensor> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.upload(TensorDesc::new(DType::F32, shape.to_vec()), &bytes)
    }

    /// Reads a view back as f32 values (F32 or BF16 storage).
    pub fn read_f32(&self, arg: &TensorArg) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(arg)?;
        Ok(match arg.desc.dtype {
            DType::BF16 => bytes
                .chunks_exact(2)
                .map(|c| concord_core::convert::bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            _ => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        })
    }

    /// Reads a view back as u32 values.
    pub fn read_u32(&self, arg: &TensorArg) -> Result<Vec<u32>> {
        let bytes = self.read_bytes(arg)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// A view's bytes, read back to the host.
    fn read_bytes(&self, arg: &TensorArg) -> Result<Vec<u8>> {
        self.timed(
            || Activity::ReadBack,
            || {
                let mut bytes = vec![0u8; arg.desc.bytes()];
                self.backend.read(arg.buffer, arg.offset, &mut bytes)?;
                Ok(bytes)
            },
        )
    }
}
