//! The OpenCL runtime under the shared device backend (`concord_kernels::device_backend`):
//! one device, one in-order queue, the shared kernel sources built once per op kind.
use std::sync::Arc;

use concord_core::{Error, Result};
use concord_kernels::device_backend::{DeviceBackend, DeviceRuntime};
use concord_kernels::host::{KernelArg, Work};
use concord_kernels::{Program, Target};
use concord_ops::{Backend, BackendInfo, KernelMode};

use crate::sys::{self, KernelFn, Mem, Queue};

/// Build options: OpenCL C 1.2, IEEE f32 division and square root, no fast-math, no mad, no
/// denormal flushing (none of those options is given), argument info for the launch checks.
const BUILD_OPTIONS: &str =
    "-cl-std=CL1.2 -cl-fp32-correctly-rounded-divide-sqrt -cl-kernel-arg-info";

/// The OpenCL backend on one device.
type OpenClBackend = DeviceBackend<ClRuntime>;

/// One device's context and in-order queue.
pub(crate) struct ClRuntime {
    queue: Queue,
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

impl DeviceRuntime for ClRuntime {
    type Mem = Mem;
    type Program = Compiled;

    /// At least 4 bytes, as OpenCL refuses empty buffers.
    fn alloc(&self, bytes: usize) -> Result<Mem> {
        self.queue.alloc(bytes)
    }

    fn write(&self, mem: &Mem, offset: usize, src: &[u8]) -> Result<()> {
        self.queue.write(mem, offset, src)
    }

    fn read(&self, mem: &Mem, offset: usize, dst: &mut [u8]) -> Result<()> {
        self.queue.read(mem, offset, dst)
    }

    fn compile(&self, which: Program) -> Result<Compiled> {
        let kind = which.name();
        let source = which.source(Target::OpenCl);
        let built = self
            .queue
            .build(&source, BUILD_OPTIONS)
            .map_err(|e| match e {
                Error::Backend { backend, message } => Error::Backend {
                    backend,
                    message: format!("{kind}: {message}"),
                },
                other => other,
            })?;
        let kernels = which
            .kernel_names()
            .into_iter()
            .map(|n| Ok((n, self.queue.kernel(&built, n)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Compiled { kernels })
    }

    /// OpenCL keeps a released buffer alive until the kernels using it have finished, so
    /// scratch dropped after its launches are enqueued is safe.
    fn run(
        &self,
        program: &Compiled,
        name: &str,
        work: Work,
        args: &[KernelArg<'_, Mem>],
    ) -> Result<()> {
        self.queue.launch(program.kernel(name)?, work, args)
    }

    fn synchronize(&self) -> Result<()> {
        self.queue.finish()
    }

    /// The device's global memory, free being that minus what this backend holds (OpenCL
    /// cannot see other processes' buffers): `serve`'s margin of 10 % covers some of them.
    fn memory(&self) -> Option<concord_ops::DeviceMemory> {
        let (free, total) = self
            .queue
            .memory()
            .map_err(|e| tracing::warn!("opencl device memory unknown: {e}"))
            .ok()?;
        Some(concord_ops::DeviceMemory { free, total })
    }
}

/// Opens the OpenCL backend, or says why it cannot run here.
///
/// Picks the device named by `CONCORD_OPENCL_DEVICE` (a substring of the device name, or an
/// index into the list of all devices), else the first GPU able to run the numerics
/// contract, else the first other such device. Exact mode.
pub fn probe() -> Result<Arc<dyn Backend>> {
    probe_mode(KernelMode::Exact)
}

/// [`probe`] for kernels of `mode`: fast mode runs the matmuls as work-group tiles
/// (common/tile_gemm.h) with the portable MMA step (OpenCL has no tensor-core instruction).
pub fn probe_mode(mode: KernelMode) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(open(mode)?))
}

fn open(mode: KernelMode) -> Result<OpenClBackend> {
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
    let info = BackendInfo {
        name: "opencl",
        device: chosen.name.clone(),
        driver: format!(
            "{} ({}), driver {}",
            chosen.platform_name, chosen.platform_version, chosen.driver_version
        ),
        mode,
    };
    let opened =
        Queue::new(chosen.id).and_then(|queue| DeviceBackend::open(ClRuntime { queue }, info));
    opened.map_err(|e| unavailable(format!("{}: {e}", chosen.name)))
}

fn list(devices: &[sys::DeviceDesc]) -> String {
    let names: Vec<String> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{i}: {}", d.name))
        .collect();
    format!("[{}]", names.join(", "))
}

/// Builds every program (`concord_kernels::all_programs`: each op's exact program, then the
/// fast ones) on the device `probe` would pick: one entry per program, `Err` holding the
/// build log. Fails only when no device is available.
pub fn check_kernels() -> Result<Vec<(Program, std::result::Result<(), String>)>> {
    let backend = open(KernelMode::Exact)?;
    Ok(concord_kernels::all_programs()
        .into_iter()
        .map(|program| {
            let built = backend.runtime().compile(program);
            (program, built.map(|_| ()).map_err(|e| e.to_string()))
        })
        .collect())
}
