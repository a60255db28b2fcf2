//! [`CudaBackend`]: one device, one in-order stream, the shared kernel sources compiled per op
//! kind by NVRTC, cached on disk and loaded once.
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use concord_core::{DType, Error, Result};
use concord_kernels::error_code;
use concord_kernels::host::{self, KernelArg, KernelDevice};
use concord_ops::{
    Backend, BackendInfo, Buffer, DeviceStorage, Op, OpKind, Prepared, Support, TensorArg,
};

use crate::program::{self, Toolchain};
use crate::result::{Device, DeviceMem, Module};

/// Distinguishes backend instances, so a buffer of one context is never used in another.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// The CUDA backend on one device.
pub struct CudaBackend {
    id: usize,
    info: BackendInfo,
    device: Device,
    tools: Toolchain,
    /// `[code, value, limit, 0]` written by kernels that find a bad id or position.
    status: DeviceMem,
    modules: Mutex<HashMap<OpKind, Arc<Module>>>,
}

/// Device memory behind a [`Buffer`] of this backend.
struct CudaStorage {
    owner: usize,
    mem: DeviceMem,
}

impl DeviceStorage for CudaStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "cuda"
    }
}

impl CudaBackend {
    /// Opens device `ordinal` with NVRTC loaded; `driver_version` is cuDriverGetVersion's.
    pub(crate) fn open(ordinal: usize, driver_version: i32) -> Result<CudaBackend> {
        let nvrtc = crate::nvrtc::load()?;
        let (major, minor) = nvrtc.version().map_err(|reason| Error::Unavailable {
            backend: "cuda".into(),
            reason,
        })?;
        let device = Device::open(ordinal)?;
        let name = device.name()?;
        let arch = device.arch()?;
        let status = device.alloc(16)?;
        let backend = CudaBackend {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            info: BackendInfo {
                name: "cuda",
                device: format!("{name} ({arch})"),
                driver: format!(
                    "CUDA driver {}.{}, NVRTC {major}.{minor} at {}",
                    driver_version / 1000,
                    (driver_version % 1000) / 10,
                    nvrtc.path.display()
                ),
            },
            device,
            tools: Toolchain {
                nvrtc,
                nvrtc_version: format!("{major}.{minor}"),
                driver_version: driver_version.to_string(),
                arch,
            },
            status,
            modules: Mutex::new(HashMap::new()),
        };
        // One module built now proves the compiler and the loader work (and caches `add`).
        backend.module(OpKind::Add)?;
        Ok(backend)
    }

    /// The module of `kind`, compiled or read from the cache and loaded on first use.
    fn module(&self, kind: OpKind) -> Result<Arc<Module>> {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = modules.get(&kind) {
            return Ok(m.clone());
        }
        let module = Arc::new(program::load(&self.device, &self.tools, kind)?);
        modules.insert(kind, module.clone());
        Ok(module)
    }

    /// The device memory of a buffer this backend allocated.
    fn own_mem<'a>(&self, buffer: &'a Buffer) -> Result<&'a DeviceMem> {
        match buffer.storage().as_any().downcast_ref::<CudaStorage>() {
            Some(s) if s.owner == self.id => Ok(&s.mem),
            Some(_) => Err(Error::invalid(
                "buffer allocated by another cuda backend instance (another context)",
            )),
            None => Err(Error::invalid(format!(
                "buffer allocated by backend {} passed to the cuda backend",
                buffer.storage().backend_name()
            ))),
        }
    }

    /// Reports (and clears) the first data-dependent error a kernel found since the last check.
    fn check_status(&self) -> Result<()> {
        let mut raw = [0u8; 16];
        self.device.read(&self.status, 0, &mut raw)?;
        match error_code::status_error(&raw) {
            None => Ok(()),
            Some(e) => {
                self.device.write(&self.status, 0, &[0u8; 16])?;
                Err(e)
            }
        }
    }
}

/// The backend as the shared host code (`concord_kernels::host`) sees it.
struct Launcher<'a>(&'a CudaBackend);

impl KernelDevice for Launcher<'_> {
    type Mem = DeviceMem;
    type Program = Module;

    fn mem<'a>(&self, buffer: &'a Buffer) -> Result<&'a DeviceMem> {
        self.0.own_mem(buffer)
    }

    fn status(&self) -> &DeviceMem {
        &self.0.status
    }

    /// cudarc frees a dropped allocation in stream order, after the launches using it.
    fn scratch(&self, bytes: usize) -> Result<DeviceMem> {
        self.0.device.alloc(bytes)
    }

    fn run(
        &self,
        program: &Module,
        name: &str,
        items: usize,
        args: &[KernelArg<'_, DeviceMem>],
    ) -> Result<()> {
        self.0.device.launch(program.function(name)?, items, args)
    }
}

impl Backend for CudaBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn supports(&self, kind: OpKind, dtype: DType) -> Support {
        Support::of_catalogue("cuda", kind, dtype)
    }

    fn alloc(&self, bytes: usize) -> Result<Buffer> {
        let mem = self.device.alloc(bytes)?;
        Ok(Buffer::new(
            bytes,
            Box::new(CudaStorage {
                owner: self.id,
                mem,
            }),
        ))
    }

    fn write(&self, dst: &Buffer, offset: usize, src: &[u8]) -> Result<()> {
        dst.check_range(offset, src.len())?;
        self.device.write(self.own_mem(dst)?, offset, src)
    }

    fn read(&self, src: &Buffer, offset: usize, dst: &mut [u8]) -> Result<()> {
        src.check_range(offset, dst.len())?;
        self.device.read(self.own_mem(src)?, offset, dst)?;
        self.check_status()
    }

    fn prepare(&self, op: &Op) -> Result<Prepared> {
        Ok(Prepared {
            op: op.clone(),
            workspace_bytes: 0,
            state: self.module(op.kind())?,
        })
    }

    fn launch(
        &self,
        prepared: &Prepared,
        inputs: &[TensorArg],
        outputs: &[TensorArg],
    ) -> Result<()> {
        let module = prepared
            .state
            .clone()
            .downcast::<Module>()
            .map_err(|_| Error::invalid("op prepared by another backend passed to cuda"))?;
        let op = &prepared.op;
        concord_ops::check_launch(op, inputs, outputs)?;
        host::launch(&Launcher(self), &*module, op, inputs, outputs)
    }

    fn synchronize(&self) -> Result<()> {
        self.device.synchronize()?;
        self.check_status()
    }
}
