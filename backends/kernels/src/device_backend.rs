//! [`DeviceBackend`]: the `Backend` trait implemented once for every device that runs the
//! shared kernels. A vendor crate supplies a [`DeviceRuntime`] (memory, copies, compiling one
//! op's program, a 1-D launch, a wait); buffer ownership checks, the status words kernels
//! report data-dependent errors through, the per-op program cache and the host side of every
//! op (`crate::host`) are the same on OpenCL, CUDA and HIP.
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use concord_core::{DType, Error, Result};
use concord_ops::{
    Backend, BackendInfo, Buffer, DeviceStorage, Op, OpKind, Prepared, Support, TensorArg,
};

use crate::error_code;
use crate::host::{self, KernelArg, KernelDevice, Work};

/// What one vendor runtime provides: one device, one in-order queue.
pub trait DeviceRuntime: Send + Sync + 'static {
    /// A device allocation.
    type Mem: Send + Sync + 'static;
    /// The compiled kernels of one op's program.
    type Program: Send + Sync + 'static;

    /// `bytes` of device memory (contents unspecified).
    fn alloc(&self, bytes: usize) -> Result<Self::Mem>;
    /// Copies `src` to byte `offset` of `mem` (range already checked), in queue order.
    fn write(&self, mem: &Self::Mem, offset: usize, src: &[u8]) -> Result<()>;
    /// Copies bytes at `offset` of `mem` into `dst` (range already checked) after all
    /// enqueued work, waiting for it.
    fn read(&self, mem: &Self::Mem, offset: usize, dst: &mut [u8]) -> Result<()>;
    /// Compiles (or loads from a cache) and loads `program`.
    fn compile(&self, program: crate::Program) -> Result<Self::Program>;
    /// Enqueues kernel `name` of `program` over `work` with `args`. Scratch the
    /// host code drops right after must stay valid until this launch has run (see
    /// [`KernelDevice::scratch`]).
    fn run(
        &self,
        program: &Self::Program,
        name: &str,
        work: Work,
        args: &[KernelArg<'_, Self::Mem>],
    ) -> Result<()>;
    /// Waits for everything enqueued.
    fn synchronize(&self) -> Result<()>;
    /// Free and total device memory (cuMemGetInfo, hipMemGetInfo, …); default unknown.
    fn memory(&self) -> Option<concord_ops::DeviceMemory> {
        None
    }
}

/// Distinguishes backend instances, so a buffer of one context is never used in another.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A device backend: the shared kernels on one [`DeviceRuntime`].
pub struct DeviceBackend<R: DeviceRuntime> {
    id: usize,
    info: BackendInfo,
    runtime: R,
    /// `[code, value, limit, 0]` written by kernels that find a bad id or position.
    status: R::Mem,
    programs: Mutex<HashMap<OpKind, Arc<R::Program>>>,
}

/// Device memory behind a [`Buffer`] of a [`DeviceBackend`].
struct Storage<M> {
    owner: usize,
    backend: &'static str,
    mem: M,
}

impl<M: Send + Sync + 'static> DeviceStorage for Storage<M> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        self.backend
    }
}

impl<R: DeviceRuntime> DeviceBackend<R> {
    /// The backend on `runtime`, running kernels of `info.mode`: allocates and clears the
    /// status words, then builds one program (`add`), which proves the compiler and the
    /// loader work.
    pub fn open(runtime: R, info: BackendInfo) -> Result<Self> {
        let status = runtime.alloc(16)?;
        runtime.write(&status, 0, &[0u8; 16])?;
        let backend = DeviceBackend {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            info,
            runtime,
            status,
            programs: Mutex::new(HashMap::new()),
        };
        backend.program(OpKind::Add)?;
        Ok(backend)
    }

    /// The vendor runtime.
    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// The program of `kind` in this backend's mode, compiled on first use.
    pub fn program(&self, kind: OpKind) -> Result<Arc<R::Program>> {
        let mut programs = self.programs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = programs.get(&kind) {
            return Ok(p.clone());
        }
        let which = crate::Program::of(kind, self.info.mode);
        let program = Arc::new(self.runtime.compile(which)?);
        programs.insert(kind, program.clone());
        Ok(program)
    }

    /// The device memory of a buffer this backend allocated.
    fn own_mem<'a>(&self, buffer: &'a Buffer) -> Result<&'a R::Mem> {
        let name = self.info.name;
        match buffer.storage().as_any().downcast_ref::<Storage<R::Mem>>() {
            Some(s) if s.owner == self.id => Ok(&s.mem),
            Some(_) => Err(Error::invalid(format!(
                "buffer allocated by another {name} backend instance (another context)"
            ))),
            None => Err(Error::invalid(format!(
                "buffer allocated by backend {} passed to the {name} backend",
                buffer.storage().backend_name()
            ))),
        }
    }

    /// Reports (and clears) the first data-dependent error a kernel found since the last check.
    fn check_status(&self) -> Result<()> {
        let mut raw = [0u8; 16];
        self.runtime.read(&self.status, 0, &mut raw)?;
        match error_code::status_error(&raw) {
            None => Ok(()),
            Some(e) => {
                self.runtime.write(&self.status, 0, &[0u8; 16])?;
                Err(e)
            }
        }
    }
}

impl<R: DeviceRuntime> KernelDevice for DeviceBackend<R> {
    type Mem = R::Mem;
    type Program = R::Program;

    fn mem<'a>(&self, buffer: &'a Buffer) -> Result<&'a R::Mem> {
        self.own_mem(buffer)
    }

    fn status(&self) -> &R::Mem {
        &self.status
    }

    fn scratch(&self, bytes: usize) -> Result<R::Mem> {
        self.runtime.alloc(bytes)
    }

    fn run(
        &self,
        program: &R::Program,
        name: &str,
        work: Work,
        args: &[KernelArg<'_, R::Mem>],
    ) -> Result<()> {
        self.runtime.run(program, name, work, args)
    }
}

impl<R: DeviceRuntime> Backend for DeviceBackend<R> {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn supports(&self, kind: OpKind, dtype: DType) -> Support {
        Support::of_catalogue(self.info.name, kind, dtype)
    }

    fn alloc(&self, bytes: usize) -> Result<Buffer> {
        let mem = self.runtime.alloc(bytes)?;
        Ok(Buffer::new(
            bytes,
            Box::new(Storage {
                owner: self.id,
                backend: self.info.name,
                mem,
            }),
        ))
    }

    fn write(&self, dst: &Buffer, offset: usize, src: &[u8]) -> Result<()> {
        dst.check_range(offset, src.len())?;
        self.runtime.write(self.own_mem(dst)?, offset, src)
    }

    fn read(&self, src: &Buffer, offset: usize, dst: &mut [u8]) -> Result<()> {
        src.check_range(offset, dst.len())?;
        self.runtime.read(self.own_mem(src)?, offset, dst)?;
        self.check_status()
    }

    fn prepare(&self, op: &Op) -> Result<Prepared> {
        Ok(Prepared {
            op: op.clone(),
            workspace_bytes: 0,
            state: self.program(op.kind())?,
        })
    }

    fn launch(
        &self,
        prepared: &Prepared,
        inputs: &[TensorArg],
        outputs: &[TensorArg],
    ) -> Result<()> {
        let program = prepared
            .state
            .clone()
            .downcast::<R::Program>()
            .map_err(|_| {
                Error::invalid(format!(
                    "op prepared by another backend passed to {}",
                    self.info.name
                ))
            })?;
        let op = &prepared.op;
        concord_ops::check_launch(op, inputs, outputs)?;
        let mode = crate::program_mode(op.kind(), self.info.mode);
        host::launch(self, &*program, op, mode, inputs, outputs)
    }

    fn synchronize(&self) -> Result<()> {
        self.runtime.synchronize()?;
        self.check_status()
    }

    fn memory(&self) -> Option<concord_ops::DeviceMemory> {
        self.runtime.memory()
    }
}
