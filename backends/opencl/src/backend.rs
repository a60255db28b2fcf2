//! [`OpenClBackend`]: one device, one in-order queue, the shared kernel sources built once per
//! op kind and cached.
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use concord_core::{DType, Error, Result};
use concord_kernels::{error_code, kernel_names, Target};
use concord_ops::{
    Backend, BackendInfo, Buffer, DeviceStorage, Op, OpKind, Prepared, Support, TensorArg,
};

use concord_kernels::host::{self, KernelArg, KernelDevice};

use crate::sys::{self, KernelFn, Mem, Queue};

/// Build options: OpenCL C 1.2, IEEE f32 division and square root, no fast-math, no mad, no
/// denormal flushing (none of those options is given), argument info for the launch checks.
const BUILD_OPTIONS: &str =
    "-cl-std=CL1.2 -cl-fp32-correctly-rounded-divide-sqrt -cl-kernel-arg-info";

/// Distinguishes backend instances, so a buffer of one context is never used in another.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// The OpenCL backend on one device.
pub struct OpenClBackend {
    id: usize,
    info: BackendInfo,
    queue: Queue,
    /// `[code, value, limit, 0]` written by kernels that find a bad id or position.
    status: Mem,
    programs: Mutex<HashMap<OpKind, Arc<Compiled>>>,
}

/// The kernels of one op's program.
pub(crate) struct Compiled {
    kernels: Vec<(&'static str, KernelFn)>,
}

impl Compiled {
    pub(crate) fn kernel(&self, name: &str) -> Result<&KernelFn> {
        self.kernels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| k)
            .ok_or_else(|| Error::Backend {
                backend: "opencl".into(),
                message: format!("no kernel {name} in the program"),
            })
    }
}

/// Device memory behind a [`Buffer`] of this backend.
pub(crate) struct ClStorage {
    owner: usize,
    pub(crate) mem: Mem,
}

impl DeviceStorage for ClStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn backend_name(&self) -> &'static str {
        "opencl"
    }
}

/// Opens the OpenCL backend, or says why it cannot run here.
///
/// Picks the device named by `CONCORD_OPENCL_DEVICE` (a substring of the device name, or an
/// index into the list of all devices), else the first GPU able to run the numerics
/// contract, else the first other such device.
pub fn probe() -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(open()?))
}

fn open() -> Result<OpenClBackend> {
    let unavailable = |reason: String| Error::Unavailable {
        backend: "opencl".into(),
        reason,
    };
    let devices = sys::platforms().map_err(unavailable)?;
    let wanted = std::env::var("CONCORD_OPENCL_DEVICE")
        .ok()
        .filter(|v| !v.is_empty());
    let chosen = match &wanted {
        Some(w) => {
            let found = match w.parse::<usize>() {
                Ok(i) => devices.get(i),
                Err(_) => devices.iter().find(|d| d.name.contains(w.as_str())),
            };
            let d = found.ok_or_else(|| {
                unavailable(format!(
                    "CONCORD_OPENCL_DEVICE={w:?} matches no device of {}",
                    list(&devices)
                ))
            })?;
            if let Some(why) = &d.unfit {
                return Err(unavailable(format!("{}: {why}", d.name)));
            }
            d
        }
        None => devices
            .iter()
            .find(|d| d.unfit.is_none() && d.is_gpu)
            .or_else(|| devices.iter().find(|d| d.unfit.is_none()))
            .ok_or_else(|| {
                let why: Vec<String> = devices
                    .iter()
                    .map(|d| format!("{}: {}", d.name, d.unfit.as_deref().unwrap_or("")))
                    .collect();
                unavailable(format!(
                    "no device can run the numerics contract ({})",
                    why.join("; ")
                ))
            })?,
    };
    let setup = || -> Result<(Queue, Mem)> {
        let queue = Queue::new(chosen.id)?;
        let status = queue.alloc(16)?;
        queue.write(&status, 0, &[0u8; 16])?;
        Ok((queue, status))
    };
    let (queue, status) = setup().map_err(|e| unavailable(format!("{}: {e}", chosen.name)))?;
    let backend = OpenClBackend {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        info: BackendInfo {
            name: "opencl",
            device: chosen.name.clone(),
            driver: format!(
                "{} ({}), driver {}",
                chosen.platform_name, chosen.platform_version, chosen.driver_version
            ),
        },
        queue,
        status,
        programs: Mutex::new(HashMap::new()),
    };
    // One program built now proves the device's compiler works (and caches `add`).
    backend
        .compiled(OpKind::Add)
        .map_err(|e| unavailable(format!("{}: {e}", chosen.name)))?;
    Ok(backend)
}

fn list(devices: &[sys::DeviceDesc]) -> String {
    let names: Vec<String> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{i}: {}", d.name))
        .collect();
    format!("[{}]", names.join(", "))
}

impl OpenClBackend {
    /// The program of `kind`, built on first use.
    fn compiled(&self, kind: OpKind) -> Result<Arc<Compiled>> {
        let mut programs = self.programs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = programs.get(&kind) {
            return Ok(c.clone());
        }
        let source = concord_kernels::source(Target::OpenCl, kind);
        let program = self
            .queue
            .build(&source, BUILD_OPTIONS)
            .map_err(|e| match e {
                Error::Backend { backend, message } => Error::Backend {
                    backend,
                    message: format!("{kind}: {message}"),
                },
                other => other,
            })?;
        let kernels = kernel_names(kind)
            .iter()
            .map(|&n| Ok((n, self.queue.kernel(&program, n)?)))
            .collect::<Result<Vec<_>>>()?;
        let compiled = Arc::new(Compiled { kernels });
        programs.insert(kind, compiled.clone());
        Ok(compiled)
    }

    /// The device memory of a buffer this backend allocated.
    fn own_mem<'a>(&self, buffer: &'a Buffer) -> Result<&'a Mem> {
        match buffer.storage().as_any().downcast_ref::<ClStorage>() {
            Some(s) if s.owner == self.id => Ok(&s.mem),
            Some(_) => Err(Error::invalid(
                "buffer allocated by another opencl backend instance (another context)",
            )),
            None => Err(Error::invalid(format!(
                "buffer allocated by backend {} passed to the opencl backend",
                buffer.storage().backend_name()
            ))),
        }
    }

    /// Reports (and clears) the first data-dependent error a kernel found since the last check.
    fn check_status(&self) -> Result<()> {
        let mut raw = [0u8; 16];
        self.queue.read(&self.status, 0, &mut raw)?;
        match error_code::status_error(&raw) {
            None => Ok(()),
            Some(e) => {
                self.queue.write(&self.status, 0, &[0u8; 16])?;
                Err(e)
            }
        }
    }
}

/// The backend as the shared host code (`concord_kernels::host`) sees it.
struct Launcher<'a>(&'a OpenClBackend);

impl KernelDevice for Launcher<'_> {
    type Mem = Mem;
    type Program = Compiled;

    fn mem<'a>(&self, buffer: &'a Buffer) -> Result<&'a Mem> {
        self.0.own_mem(buffer)
    }

    fn status(&self) -> &Mem {
        &self.0.status
    }

    /// OpenCL keeps a released buffer alive until the kernels using it have finished.
    fn scratch(&self, bytes: usize) -> Result<Mem> {
        self.0.queue.alloc(bytes)
    }

    fn run(
        &self,
        program: &Compiled,
        name: &str,
        items: usize,
        args: &[KernelArg<'_, Mem>],
    ) -> Result<()> {
        self.0.queue.launch(program.kernel(name)?, items, args)
    }
}

impl Backend for OpenClBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn supports(&self, kind: OpKind, dtype: DType) -> Support {
        Support::of_catalogue("opencl", kind, dtype)
    }

    fn alloc(&self, bytes: usize) -> Result<Buffer> {
        let mem = self.queue.alloc(bytes)?;
        Ok(Buffer::new(
            bytes,
            Box::new(ClStorage {
                owner: self.id,
                mem,
            }),
        ))
    }

    fn write(&self, dst: &Buffer, offset: usize, src: &[u8]) -> Result<()> {
        dst.check_range(offset, src.len())?;
        self.queue.write(self.own_mem(dst)?, offset, src)
    }

    fn read(&self, src: &Buffer, offset: usize, dst: &mut [u8]) -> Result<()> {
        src.check_range(offset, dst.len())?;
        self.queue.read(self.own_mem(src)?, offset, dst)?;
        self.check_status()
    }

    fn prepare(&self, op: &Op) -> Result<Prepared> {
        Ok(Prepared {
            op: op.clone(),
            workspace_bytes: 0,
            state: self.compiled(op.kind())?,
        })
    }

    fn launch(
        &self,
        prepared: &Prepared,
        inputs: &[TensorArg],
        outputs: &[TensorArg],
    ) -> Result<()> {
        let compiled = prepared
            .state
            .clone()
            .downcast::<Compiled>()
            .map_err(|_| Error::invalid("op prepared by another backend passed to opencl"))?;
        let op = &prepared.op;
        concord_ops::check_launch(op, inputs, outputs)?;
        host::launch(&Launcher(self), &*compiled, op, inputs, outputs)
    }

    fn synchronize(&self) -> Result<()> {
        self.queue.finish()?;
        self.check_status()
    }
}

/// Builds every op's program on the device `probe` would pick: one entry per op, `Err` holding
/// the build log. Fails only when no device is available.
pub fn check_kernels() -> Result<Vec<(OpKind, std::result::Result<(), String>)>> {
    let backend = open()?;
    Ok(OpKind::ALL
        .iter()
        .map(|&op| {
            (
                op,
                backend.compiled(op).map(|_| ()).map_err(|e| e.to_string()),
            )
        })
        .collect())
}
