use std::any::Any;
use std::sync::Arc;

use concord_core::{DType, Result};
use serde::Serialize;

use crate::{Buffer, KernelMode, Op, OpKind, TensorArg};

/// What a backend says about itself, for logs and conformance reports.
#[derive(Debug, Clone, Serialize)]
pub struct BackendInfo {
    /// Backend name: `cpu`, `opencl`, `cuda`, `rocm`, `ascend`.
    pub name: &'static str,
    /// Device name as the vendor reports it.
    pub device: String,
    /// Driver / runtime / library versions, free text.
    pub driver: String,
    /// The kernels it runs: `exact` everywhere; `fast` only where the backend has a fast
    /// path and was opened for it.
    pub mode: KernelMode,
}

/// Whether a backend runs an op kind with a given weight/activation dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Implemented under the numerics contract.
    Native,
    /// Not implemented; the reason is shown to users and in conformance reports.
    Unsupported(String),
}

impl Support {
    /// What every backend that implements the whole catalogue runs: every op with F32 and
    /// BF16, the FP8 ops (`fp8_act_quant`, `block_fp8_matmul`, `moe_experts`) with F8_E4M3
    /// weights, and the byte-copy ops (`slice_columns`, `scatter_rows`, `gather_rows`) with
    /// every dtype (their kernels move bytes and never look at values). `backend` names the
    /// backend in the reason for anything else.
    pub fn of_catalogue(backend: &str, kind: OpKind, dtype: DType) -> Support {
        let fp8_kind = matches!(
            kind,
            OpKind::BlockFp8Matmul | OpKind::MoeExperts | OpKind::Fp8ActQuant
        );
        match dtype {
            DType::F32 | DType::BF16 => Support::Native,
            DType::F8E4M3 if fp8_kind => Support::Native,
            _ if kind.is_byte_copy() => Support::Native,
            d => Support::Unsupported(format!(
                "the {backend} backend does not run {kind} with {d}"
            )),
        }
    }
}

/// An op made ready to launch on one backend (compiled program, chosen kernel, workspace size).
///
/// Compile once at load time, launch many times. Backends put their compiled state in
/// `state` and recover it with `downcast_ref`.
#[derive(Clone)]
pub struct Prepared {
    /// The op this was prepared for; launches check their arguments against it.
    pub op: Op,
    /// Extra device memory one launch needs (CANN's aclnn two-phase calls report it);
    /// backends allocate it themselves.
    pub workspace_bytes: usize,
    /// Backend-specific compiled state.
    pub state: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prepared({:?})", self.op)
    }
}

/// A device's memory as its driver reports it, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    /// Free now (after what this process and others hold).
    pub free: usize,
    /// The device's whole memory.
    pub total: usize,
}

/// One device of one vendor, driven through one in-order queue.
///
/// Deliberately small: memory, a queue, and compile-once/launch-many execution of the closed
/// op catalogue. Launches are asynchronous and ordered; [`Backend::read`] and
/// [`Backend::synchronize`] wait for everything enqueued before them. Outputs of a launch
/// never alias its inputs. Buffers free their memory when dropped.
pub trait Backend: Send + Sync {
    /// Name, device and driver.
    fn info(&self) -> &BackendInfo;
    /// Whether `kind` runs with operands of `dtype` (weights for matmuls, activations otherwise).
    fn supports(&self, kind: OpKind, dtype: DType) -> Support;
    /// Allocates `bytes` of device memory (contents unspecified).
    fn alloc(&self, bytes: usize) -> Result<Buffer>;
    /// Copies host bytes into `dst` at byte `offset`.
    fn write(&self, dst: &Buffer, offset: usize, src: &[u8]) -> Result<()>;
    /// Copies bytes at `offset` of `src` into host memory, after all enqueued work.
    fn read(&self, src: &Buffer, offset: usize, dst: &mut [u8]) -> Result<()>;
    /// Compiles or selects what `op` needs on this device.
    fn prepare(&self, op: &Op) -> Result<Prepared>;
    /// Enqueues one execution of a prepared op.
    fn launch(
        &self,
        prepared: &Prepared,
        inputs: &[TensorArg],
        outputs: &[TensorArg],
    ) -> Result<()>;
    /// Waits until every enqueued launch and copy has finished.
    fn synchronize(&self) -> Result<()>;
    /// Free and total device memory, when the driver can tell (sizes the KV cache after the
    /// weights are loaded). Default: unknown.
    fn memory(&self) -> Option<DeviceMemory> {
        None
    }
    /// Runs `work` — a whole forward pass, many launches — where this backend's host-side
    /// parallelism starts cheapest. The default runs it here; the CPU backend runs it on a
    /// worker of its thread pool, so each op's parallel loops fork by work-stealing instead of
    /// waking the pool from outside once per op (the demo model decodes 3× faster). Results
    /// never depend on where it runs.
    fn host_scope(&self, work: &mut (dyn FnMut() + Send)) {
        work()
    }
}

impl dyn Backend {
    /// Allocates a buffer holding `bytes` (a convenience over alloc + write).
    pub fn upload(&self, bytes: &[u8]) -> Result<Buffer> {
        let buf = self.alloc(bytes.len())?;
        self.write(&buf, 0, bytes)?;
        Ok(buf)
    }
    /// Prepares and launches `op` once (for tests and one-off calls; models prepare at load).
    pub fn run(&self, op: &Op, inputs: &[TensorArg], outputs: &[TensorArg]) -> Result<()> {
        let prepared = self.prepare(op)?;
        self.launch(&prepared, inputs, outputs)
    }
}
