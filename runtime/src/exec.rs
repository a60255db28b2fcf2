use std::sync::{Arc, Mutex};

use concord_core::{DType, Result};
use concord_ops::{Backend, Buffer, Op, Prepared, TensorArg, TensorDesc};

use crate::buffer_pool::{self, BufferPool};
use crate::profile::{Activity, OpProfile, Profiler};

/// A tensor living in one backend's memory.
pub struct DeviceTensor {
    /// The memory.
    pub buffer: Buffer,
    /// Element type and shape.
    pub desc: TensorDesc,
    /// Where the memory goes when the tensor drops: the executor's pool of op outputs, or
    /// (`None`) back to the backend.
    recycle: Option<Arc<BufferPool>>,
}

impl Drop for DeviceTensor {
    fn drop(&mut self) {
        if let Some(pool) = self.recycle.take() {
            pool.put(std::mem::replace(&mut self.buffer, buffer_pool::vacant()));
        }
    }
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
    /// Memory of dropped op outputs, for the next ones (CPU backend only: see buffer_pool.rs).
    pool: Option<Arc<BufferPool>>,
    /// Per-op timing, off unless [`Executor::profile_start`] turned it on.
    profiler: Profiler,
    /// Whether a timed launch or copy is followed by a synchronize (a device backend queues
    /// work, so only a sync makes its wall time the kernel's).
    sync_when_profiling: bool,
}

impl Executor {
    /// An executor over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let on_cpu = backend.info().name == "cpu";
        let sync_when_profiling = !on_cpu;
        Executor {
            backend,
            prepared: Mutex::new(Vec::new()),
            pool: on_cpu.then(Arc::default),
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

    /// Runs host-side `work` (a lookup, shape inference and allocation) as `activity` under
    /// the profiler, with no device sync: it enqueues nothing, and an idle queue's sync would
    /// only add its own cost to the row.
    #[inline]
    fn timed_host<R>(&self, activity: impl FnOnce() -> Activity, work: impl FnOnce() -> R) -> R {
        self.profiler.time(activity, || {}, work)
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
        let tensors = self.timed_host(
            || Activity::OutputAlloc,
            || {
                let descs: Vec<TensorDesc> = inputs.iter().map(|a| a.desc.clone()).collect();
                op.infer(&descs)?
                    .into_iter()
                    .map(|desc| self.pooled(desc))
                    .collect::<Result<Vec<_>>>()
            },
        )?;
        let out_args: Vec<TensorArg> = tensors.iter().map(|t| t.arg()).collect();
        self.launch(&op, inputs, &out_args)?;
        Ok(tensors)
    }

    /// A tensor of `desc` whose every byte the caller writes next (an op's output, an
    /// upload): memory from the pool when it holds a buffer of that size, else fresh. Its
    /// memory goes back to the pool when it drops.
    fn pooled(&self, desc: TensorDesc) -> Result<DeviceTensor> {
        let bytes = desc.bytes();
        let buffer = match self.pool.as_ref().and_then(|p| p.take(bytes)) {
            Some(b) => b,
            None => self.backend.alloc(bytes)?,
        };
        Ok(DeviceTensor {
            buffer,
            desc,
            recycle: self.pool.clone(),
        })
    }

    /// Runs a single-output op.
    pub fn apply1(&self, op: impl Into<Op>, inputs: &[TensorArg]) -> Result<DeviceTensor> {
        Ok(self.apply(op, inputs)?.swap_remove(0))
    }

    /// Runs `op` writing into caller-provided outputs.
    pub fn launch(&self, op: &Op, inputs: &[TensorArg], outputs: &[TensorArg]) -> Result<()> {
        let prepared = self.timed_host(|| Activity::Lookup, || self.prepared(op))?;
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
                let bytes = desc.bytes();
                let tensor = self.pooled(desc)?;
                self.backend.write(&tensor.buffer, 0, &vec![0u8; bytes])?;
                Ok(tensor)
            },
        )
    }

    /// Allocates a tensor whose bytes the caller writes next (with [`Executor::write`]).
    pub fn alloc(&self, desc: TensorDesc) -> Result<DeviceTensor> {
        self.timed_host(
            || Activity::OutputAlloc,
            || {
                let buffer = self.backend.alloc(desc.bytes())?;
                Ok(DeviceTensor {
                    buffer,
                    desc,
                    recycle: None,
                })
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
        if desc.bytes() != bytes.len() {
            return Err(concord_core::Error::invalid(format!(
                "upload of {} bytes into a tensor of {} bytes ({:?} {:?})",
                bytes.len(),
                desc.bytes(),
                desc.dtype,
                desc.shape
            )));
        }
        self.timed(
            || Activity::Upload,
            || {
                let tensor = self.pooled(desc)?;
                self.backend.write(&tensor.buffer, 0, bytes)?;
                Ok(tensor)
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
