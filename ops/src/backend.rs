use std::any::Any;
use std::sync::Arc;

use concord_core::{DType, Result};
use serde::Serialize;

use crate::{Buffer, Op, OpKind, TensorArg};

/// What a backend says about itself, for logs and conformance reports.
#[derive(Debug, Clone, Serialize)]
pub struct BackendInfo {
    /// Backend name: `cpu`, `opencl`, `cuda`, `rocm`, `ascend`.
    pub name: &'static str,
    /// Device name as the vendor reports it.
    pub device: String,
    /// Driver / runtime / library versions, free text.
    pub driver: String,
}

/// Whether a backend runs an op kind with a given weight/activation dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Implemented under the numerics contract.
    Native,
    /// Not implemented; the reason is shown to users and in conformance reports.
    Unsupported(String),
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
