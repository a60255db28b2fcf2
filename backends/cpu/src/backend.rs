//! [`CpuBackend`]: host memory, a trivially in-order queue (launches run synchronously) and
//! the reference kernels.
use std::sync::Arc;

use concord_core::{DType, Result};
use concord_ops::{
    Backend, BackendInfo, Buffer, KernelMode, Op, OpKind, Prepared, Support, TensorArg,
};

use crate::ops;
use crate::storage::{read_bytes, with_views, write_bytes, CpuStorage};

/// The CPU backend: the reference implementation of every op of the catalogue.
pub struct CpuBackend {
    info: BackendInfo,
}

impl CpuBackend {
    /// A CPU backend over rayon's global thread pool.
    pub fn new() -> Self {
        let threads = rayon::current_num_threads();
        let model = cpu_model().unwrap_or_else(|| std::env::consts::ARCH.to_string());
        CpuBackend {
            info: BackendInfo {
                name: "cpu",
                device: format!("{model} ({threads} threads)"),
                driver: format!("concord-backend-cpu {}", env!("CARGO_PKG_VERSION")),
                mode: KernelMode::Exact,
            },
        }
    }
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// The CPU backend; always available.
pub fn probe() -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(CpuBackend::new()))
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Backend for CpuBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn supports(&self, kind: OpKind, dtype: DType) -> Support {
        Support::of_catalogue("cpu", kind, dtype)
    }

    fn alloc(&self, bytes: usize) -> Result<Buffer> {
        Ok(Buffer::new(bytes, Box::new(CpuStorage::new(bytes))))
    }

    fn write(&self, dst: &Buffer, offset: usize, src: &[u8]) -> Result<()> {
        write_bytes(dst, offset, src)
    }

    fn read(&self, src: &Buffer, offset: usize, dst: &mut [u8]) -> Result<()> {
        read_bytes(src, offset, dst)
    }

    fn prepare(&self, op: &Op) -> Result<Prepared> {
        Ok(Prepared {
            op: op.clone(),
            workspace_bytes: 0,
            state: Arc::new(()),
        })
    }

    fn launch(
        &self,
        prepared: &Prepared,
        inputs: &[TensorArg],
        outputs: &[TensorArg],
    ) -> Result<()> {
        let op = &prepared.op;
        concord_ops::check_launch(op, inputs, outputs)?;
        with_views(inputs, outputs, |ins, outs| ops::run(op, ins, outs))
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// The host's memory: `MemAvailable` and `MemTotal` of /proc/meminfo (Linux).
    fn memory(&self) -> Option<concord_ops::DeviceMemory> {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let field = |name: &str| -> Option<usize> {
            let line = info.lines().find(|l| l.starts_with(name))?;
            let kib: usize = line[name.len()..].split_whitespace().next()?.parse().ok()?;
            kib.checked_mul(1024)
        };
        Some(concord_ops::DeviceMemory {
            free: field("MemAvailable:")?,
            total: field("MemTotal:")?,
        })
    }

    fn host_scope(&self, work: &mut (dyn FnMut() + Send)) {
        // On a pool worker already (nested use) this runs inline; from outside it hands the
        // whole pass to one worker, once, and waits, the other workers polling for its tasks
        // (decode 3–4 % faster than letting them sleep between launches: docs/benchmarks.md).
        crate::awake::pass_with_workers_awake(work);
    }
}
