//! The CUDA runtime under the shared device backend (`concord_kernels::device_backend`): one
//! device, one in-order stream, the shared kernel sources compiled per op kind by NVRTC,
//! cached on disk and loaded once.
use concord_core::{Error, Result};
use concord_kernels::device_backend::{DeviceBackend, DeviceRuntime};
use concord_kernels::host::{KernelArg, Work};
use concord_kernels::Program;
use concord_ops::{BackendInfo, KernelMode};

use crate::program::{self, Toolchain};
use crate::result::{Device, DeviceMem, Module};

/// The CUDA backend on one device.
pub(crate) type CudaBackend = DeviceBackend<CudaRuntime>;

/// One device and what compiling for it needs.
pub(crate) struct CudaRuntime {
    device: Device,
    tools: Toolchain,
}

/// Opens device `ordinal` with NVRTC loaded; `driver_version` is cuDriverGetVersion's.
pub(crate) fn open(ordinal: usize, driver_version: i32, mode: KernelMode) -> Result<CudaBackend> {
    let nvrtc = crate::nvrtc::load()?;
    let (major, minor) = nvrtc.version().map_err(|reason| Error::Unavailable {
        backend: "cuda".into(),
        reason,
    })?;
    let device = Device::open(ordinal)?;
    let name = device.name()?;
    let arch = device.arch()?;
    let info = BackendInfo {
        name: "cuda",
        device: format!("{name} ({arch})"),
        driver: format!(
            "CUDA driver {}.{}, NVRTC {major}.{minor} at {}",
            driver_version / 1000,
            (driver_version % 1000) / 10,
            nvrtc.path.display()
        ),
        mode,
    };
    let tools = Toolchain {
        nvrtc,
        nvrtc_version: format!("{major}.{minor}"),
        driver_version: driver_version.to_string(),
        arch,
    };
    DeviceBackend::open(CudaRuntime { device, tools }, info)
}

impl DeviceRuntime for CudaRuntime {
    type Mem = DeviceMem;
    type Program = Module;

    fn alloc(&self, bytes: usize) -> Result<DeviceMem> {
        self.device.alloc(bytes)
    }

    fn write(&self, mem: &DeviceMem, offset: usize, src: &[u8]) -> Result<()> {
        self.device.write(mem, offset, src)
    }

    fn read(&self, mem: &DeviceMem, offset: usize, dst: &mut [u8]) -> Result<()> {
        self.device.read(mem, offset, dst)
    }

    fn compile(&self, program: Program) -> Result<Module> {
        program::load(&self.device, &self.tools, program)
    }

    /// cudarc frees a dropped allocation in stream order, after the launches using it, so
    /// scratch dropped after its launches are enqueued is safe.
    fn run(
        &self,
        program: &Module,
        name: &str,
        work: Work,
        args: &[KernelArg<'_, DeviceMem>],
    ) -> Result<()> {
        self.device.launch(program.function(name)?, work, args)
    }

    fn synchronize(&self) -> Result<()> {
        self.device.synchronize()
    }

    fn memory(&self) -> Option<concord_ops::DeviceMemory> {
        let (free, total) = self
            .device
            .memory()
            .map_err(|e| tracing::warn!("device memory unknown: {e}"))
            .ok()?;
        Some(concord_ops::DeviceMemory { free, total })
    }
}
