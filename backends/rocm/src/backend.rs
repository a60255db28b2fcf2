//! The HIP runtime under the shared device backend (`concord_kernels::device_backend`): one
//! HIP device, its null stream as the in-order queue, the shared kernel sources compiled by
//! hiprtc once per op kind (cached on disk) and loaded as modules.
use std::sync::Arc;

use concord_core::{Error, Result};
use concord_kernels::code_cache::{cached_binary, CacheKey};
use concord_kernels::device_backend::{DeviceBackend, DeviceRuntime};
use concord_kernels::host::{KernelArg, Work};
use concord_kernels::{Program, Target};
use concord_ops::{BackendInfo, KernelMode};

use crate::arch;
use crate::hiprtc::{self, compile_options};
use crate::result::{CallError, DeviceMem, Hip, Hiprtc, LaunchError, Module};

/// Picks the device: an index into HIP's devices; 0 when unset.
pub const DEVICE_ENV: &str = "CONCORD_ROCM_DEVICE";

/// Overrides the gfx target read from the device (`gfx90a`, `gfx1030:xnack-`, …).
pub const ARCH_ENV: &str = "CONCORD_HIP_ARCH";

/// Threads per block. The kernels use no shared memory or barriers and guard their index,
/// so any block size computes the same bits; 256 is a multiple of both wavefront widths.
const BLOCK: usize = 256;

/// The ROCm backend on one HIP device.
pub(crate) type RocmBackend = DeviceBackend<HipRuntime>;

/// One HIP device and what compiling for it needs.
pub(crate) struct HipRuntime {
    hip: Arc<Hip>,
    rtc: Hiprtc,
    /// The HIP device ordinal; made current before every call into HIP.
    ordinal: i32,
    /// The target hiprtc compiles for: the device's gfx name without features (a code object
    /// for `gfx90a` runs whatever the device's sramecc/xnack setting), or `CONCORD_HIP_ARCH`.
    arch: String,
    /// What the code cache keys on besides source, options and arch.
    hiprtc_version: String,
    driver_version: String,
}

fn unavailable(reason: String) -> Error {
    Error::Unavailable {
        backend: "rocm".into(),
        reason,
    }
}

fn hip_error(e: impl std::fmt::Display) -> Error {
    Error::Backend {
        backend: "rocm".into(),
        message: e.to_string(),
    }
}

/// `HIP_VERSION`'s encoding (major·10⁷ + minor·10⁵ + patch) as `major.minor.patch`.
fn version_text(v: i32) -> String {
    if v >= 10_000_000 {
        format!("{}.{}.{}", v / 10_000_000, (v / 100_000) % 100, v % 100_000)
    } else {
        v.to_string()
    }
}

/// Loads HIP, initialises it and opens the device `CONCORD_ROCM_DEVICE` names (default 0).
/// Every failure is [`Error::Unavailable`] with the reason.
pub(crate) fn open_default(mode: KernelMode) -> Result<RocmBackend> {
    let hip = Arc::new(Hip::load().map_err(unavailable)?);
    hip.init()
        .map_err(|e| unavailable(format!("hipInit: {}", e.text)))?;
    let count = match hip.device_count() {
        Ok(n) if n > 0 => n,
        Ok(_) => {
            return Err(unavailable(format!(
                "no HIP device (libamdhip64 at {})",
                hip.path.display()
            )))
        }
        Err(e) => return Err(unavailable(format!("no HIP device ({e})"))),
    };
    let ordinal = match std::env::var(DEVICE_ENV).ok().filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => match v.trim().parse::<i32>() {
            Ok(i) if (0..count).contains(&i) => i,
            _ => {
                return Err(unavailable(format!(
                    "{DEVICE_ENV}={v:?} is not a device index below {count}"
                )))
            }
        },
    };
    open(hip, ordinal, mode)
}

/// Opens device `ordinal` of an initialised HIP runtime.
fn open(hip: Arc<Hip>, ordinal: i32, mode: KernelMode) -> Result<RocmBackend> {
    let call = |e: CallError| unavailable(format!("device {ordinal}: {e}"));
    hip.set_device(ordinal).map_err(call)?;
    let device = hip.device_name(ordinal).map_err(call)?;
    let device = if device.is_empty() {
        format!("HIP device {ordinal}")
    } else {
        device
    };
    let (arch, arch_full) = match std::env::var(ARCH_ENV).ok().filter(|v| !v.is_empty()) {
        Some(a) => {
            hiprtc::check_arch(&a).map_err(|e| unavailable(format!("{ARCH_ENV}={a:?}: {e}")))?;
            (a.clone(), a)
        }
        None => {
            let props = hip.device_properties(ordinal).map_err(call)?;
            let full = arch::gcn_arch_name(&props).ok_or_else(|| {
                unavailable(format!(
                    "{device}: no gfx target name (gcnArchName) in hipGetDeviceProperties; \
                     set {ARCH_ENV}"
                ))
            })?;
            (arch::target_of(&full).to_string(), full)
        }
    };
    let rtc = hiprtc::load()?;
    let (major, minor) = rtc
        .version()
        .map_err(|e| unavailable(format!("{device}: {e}")))?;
    let hiprtc_version = format!("{major}.{minor}");
    let driver_version = hip
        .driver_version()
        .map(version_text)
        .map_err(|e| unavailable(format!("{device}: {e}")))?;
    let info = BackendInfo {
        name: "rocm",
        device: device.clone(),
        driver: format!("HIP driver {driver_version}, hiprtc {hiprtc_version}, {arch_full}"),
        mode,
    };
    let runtime = HipRuntime {
        hip,
        rtc,
        ordinal,
        arch,
        hiprtc_version,
        driver_version,
    };
    DeviceBackend::open(runtime, info).map_err(|e| unavailable(format!("{device}: {e}")))
}

impl HipRuntime {
    /// Makes this runtime's device current on the calling thread.
    fn on_device(&self) -> Result<()> {
        self.hip.set_device(self.ordinal).map_err(hip_error)
    }

    /// The code object of `kind` for this device: from the disk cache, or compiled now.
    fn code_object(&self, program: Program) -> Result<Vec<u8>> {
        let source = program.source(Target::Hip);
        let name = program.name();
        let options = compile_options(&self.arch).join(" ");
        let inputs: [&[u8]; 4] = [
            source.as_bytes(),
            options.as_bytes(),
            self.hiprtc_version.as_bytes(),
            self.driver_version.as_bytes(),
        ];
        let key = CacheKey {
            backend: "hip",
            name: &name,
            arch: arch::target_of(&self.arch),
            extension: "co",
            inputs: &inputs,
        };
        let binary = cached_binary(&key, || {
            hiprtc::compile_checked(&self.rtc, program, &self.arch)
        })?;
        Ok(binary.bytes)
    }
}

impl DeviceRuntime for HipRuntime {
    type Mem = DeviceMem;
    type Program = Module;

    fn alloc(&self, bytes: usize) -> Result<DeviceMem> {
        self.on_device()?;
        self.hip
            .malloc(self.ordinal, bytes.max(4))
            .map_err(hip_error)
    }

    fn write(&self, mem: &DeviceMem, offset: usize, src: &[u8]) -> Result<()> {
        mem.write(offset, src).map_err(hip_error)
    }

    fn read(&self, mem: &DeviceMem, offset: usize, dst: &mut [u8]) -> Result<()> {
        mem.read(offset, dst).map_err(hip_error)
    }

    fn compile(&self, program: Program) -> Result<Module> {
        let code = self.code_object(program)?;
        self.on_device()?;
        self.hip
            .load_module(&code, &program.kernel_names())
            .map_err(|e| hip_error(format!("{}: {e}", program.name())))
    }

    /// Scratch is freed when the host code drops it, right after enqueuing its launches:
    /// hipFree performs an implicit hipDeviceSynchronize, so those launches have finished.
    fn run(
        &self,
        program: &Module,
        name: &str,
        work: Work,
        args: &[KernelArg<'_, DeviceMem>],
    ) -> Result<()> {
        let f = program
            .function(name)
            .ok_or_else(|| hip_error(format!("no kernel {name} in the program")))?;
        let (groups, size) = work.grid(BLOCK);
        let grid = u32::try_from(groups).map_err(|_| {
            Error::unsupported(format!(
                "kernel {name}: {groups} blocks of {size} exceed one launch's grid"
            ))
        })?;
        let size = u32::try_from(size)
            .map_err(|_| Error::unsupported(format!("kernel {name}: blocks of {size}")))?;
        self.on_device()?;
        self.hip.launch(f, grid, size, args).map_err(|e| match e {
            LaunchError::Call(e) => hip_error(e),
            LaunchError::Arguments(m) => hip_error(m),
        })
    }

    fn synchronize(&self) -> Result<()> {
        self.on_device()?;
        self.hip.synchronize().map_err(hip_error)
    }

    fn memory(&self) -> Option<concord_ops::DeviceMemory> {
        self.on_device().ok()?;
        let (free, total) = self.hip.memory().ok()?;
        Some(concord_ops::DeviceMemory { free, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_major_minor_patch() {
        assert_eq!(version_text(50_221_153), "5.2.21153");
        assert_eq!(version_text(60_032_830), "6.0.32830");
        assert_eq!(version_text(12_345), "12345");
    }
}
