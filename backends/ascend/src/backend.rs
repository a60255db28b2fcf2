//! The ACL runtime under the shared device backend (`concord_kernels::device_backend`): one
//! Ascend device, one stream as the in-order queue, each op's exact program compiled by
//! aclrtc once (cached on disk) and loaded with `aclrtBinaryLoadFromData`.
use std::path::Path;
use std::sync::Arc;

use concord_core::{Error, Result};
use concord_kernels::code_cache::{cached_binary, CacheKey};
use concord_kernels::device_backend::{DeviceBackend, DeviceRuntime};
use concord_kernels::host::{KernelArg, Work};
use concord_kernels::Program;
use concord_ops::{BackendInfo, KernelMode};

use crate::aclnn_result::Aclnn;
use crate::arch;
use crate::result::{Acl, Binary, CallError, DeviceMem, Stream};
use crate::source::{self, ParamKind};

/// Picks the device: an index into ACL's devices; 0 when unset.
pub const DEVICE_ENV: &str = "CONCORD_ASCEND_DEVICE";

/// Overrides the `--npu-arch` chosen from the SoC name (`dav-2201`, …).
pub const ARCH_ENV: &str = "CONCORD_ASCEND_ARCH";

/// The most blocks one launch asks for; the entry points walk the remaining items in
/// strides of the block dim, so the count never changes a result.
const MAX_BLOCKS: usize = 1024;
/// Items per block below which fewer blocks are launched.
const ITEMS_PER_BLOCK: usize = 64;

/// The Ascend backend on one device.
pub(crate) type AscendBackend = DeviceBackend<AscendRuntime>;

/// One Ascend device and what compiling for it needs.
pub struct AscendRuntime {
    acl: Arc<Acl>,
    stream: Arc<Stream>,
    device: i32,
    /// The SoC name (`Ascend910B3`).
    soc: String,
    /// The `--npu-arch` aclrtc compiles for.
    arch: String,
    /// What the code cache keys on besides source, options and arch.
    version: String,
}

fn unavailable(reason: String) -> Error {
    Error::Unavailable {
        backend: "ascend".into(),
        reason,
    }
}

fn acl_error(e: impl std::fmt::Display) -> Error {
    Error::Backend {
        backend: "ascend".into(),
        message: e.to_string(),
    }
}

/// The options aclrtc is given: the architecture, optimisation, and the numerics contract's
/// "no contraction into FMA" (docs/numerics.md says which of these the compiler guarantees).
pub fn compile_options(arch: &str) -> Vec<String> {
    vec![
        format!("--npu-arch={arch}"),
        "-O2".into(),
        "-ffp-contract=off".into(),
    ]
}

/// The number of blocks a launch of `items` uses.
pub(crate) fn block_dim(items: usize) -> u32 {
    items.div_ceil(ITEMS_PER_BLOCK).clamp(1, MAX_BLOCKS) as u32
}

/// Loads ACL from the normal search path and opens the device `CONCORD_ASCEND_DEVICE` names,
/// in exact mode ([`open_fast`] adds aclnn on top).
pub(crate) fn open_default() -> Result<AscendBackend> {
    let acl = Acl::load().map_err(unavailable)?;
    open_with(acl)
}

/// Loads ACL from exactly `library` and opens the device (used by the tests to point the
/// backend at the ACL stand-in).
pub(crate) fn open_library(library: &Path) -> Result<AscendBackend> {
    let acl = Acl::load_from(library).map_err(unavailable)?;
    open_with(acl)
}

/// Initialises a loaded ACL, picks the device, reads its SoC and memory, creates the stream
/// and builds the first program. Every failure is [`Error::Unavailable`] with the reason.
fn open_with(acl: Acl) -> Result<AscendBackend> {
    let acl = Arc::new(acl);
    let at = acl.path.display().to_string();
    acl.init()
        .map_err(|e| unavailable(format!("{e} (libascendcl at {at})")))?;
    let count = acl
        .device_count()
        .map_err(|e| unavailable(format!("{e} (libascendcl at {at})")))?;
    if count == 0 {
        return Err(unavailable(format!(
            "no Ascend device (aclrtGetDeviceCount is 0; libascendcl at {at})"
        )));
    }
    let device = match std::env::var(DEVICE_ENV).ok().filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(i) if i < count => i as i32,
            _ => {
                return Err(unavailable(format!(
                    "{DEVICE_ENV}={v:?} is not a device index below {count}"
                )))
            }
        },
    };
    let call = |e: CallError| unavailable(format!("device {device}: {e}"));
    acl.set_device(device).map_err(call)?;
    let soc = acl.soc_name().map_err(call)?;
    let (free, total) = acl.mem_info().map_err(call)?;
    let arch = match std::env::var(ARCH_ENV).ok().filter(|v| !v.is_empty()) {
        Some(a) if arch::known(&a) => a,
        Some(a) => {
            return Err(unavailable(format!(
                "{ARCH_ENV}={a:?} is not one of {}",
                arch::KNOWN_ARCHS.join(", ")
            )))
        }
        None => arch::npu_arch(&soc)
            .ok_or_else(|| {
                unavailable(format!(
                    "{soc}: no --npu-arch known for this SoC; set {ARCH_ENV} (one of {})",
                    arch::KNOWN_ARCHS.join(", ")
                ))
            })?
            .to_string(),
    };
    acl.rtc_status()
        .map_err(|e| unavailable(format!("{soc}: {e}")))?;
    let stream = Arc::new(Stream::create(&acl).map_err(call)?);
    let version = acl.version().unwrap_or_else(|| "unknown".into());
    let info = BackendInfo {
        name: "ascend",
        device: format!(
            "{soc} (device {device}, {} MiB free of {})",
            free >> 20,
            total >> 20
        ),
        driver: format!("ACL {version}, aclrtc --npu-arch={arch}, {at}"),
        mode: KernelMode::Exact,
    };
    let runtime = AscendRuntime {
        acl,
        stream,
        device,
        soc: soc.clone(),
        arch,
        version,
    };
    DeviceBackend::open(runtime, info).map_err(|e| unavailable(format!("{soc}: {e}")))
}

impl AscendRuntime {
    /// The loaded ACL runtime.
    pub(crate) fn acl(&self) -> &Arc<Acl> {
        &self.acl
    }

    /// The in-order stream every launch and aclnn operator is enqueued on.
    pub(crate) fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Makes this runtime's device current on the calling thread.
    pub(crate) fn on_device(&self) -> Result<()> {
        self.acl.set_device(self.device).map_err(acl_error)
    }

    /// The device binary of `program`: from the disk cache, or compiled now.
    fn binary(&self, program: Program) -> Result<(Vec<u8>, bool)> {
        let source = source::program_source(program)?;
        let name = program.name();
        let options = compile_options(&self.arch);
        let joined = options.join(" ");
        let inputs: [&[u8]; 4] = [
            source.as_bytes(),
            joined.as_bytes(),
            self.version.as_bytes(),
            self.soc.as_bytes(),
        ];
        let key = CacheKey {
            backend: "ascend",
            name: &name,
            arch: &self.arch,
            extension: "bin",
            inputs: &inputs,
        };
        let binary = cached_binary(&key, || {
            self.acl
                .compile(&source, &name, &options)
                .map_err(|log| acl_error(format!("aclrtc: {name}: {log}")))
        })?;
        Ok((binary.bytes, binary.hit))
    }
}

impl DeviceRuntime for AscendRuntime {
    type Mem = DeviceMem;
    type Program = Binary;

    fn alloc(&self, bytes: usize) -> Result<DeviceMem> {
        self.on_device()?;
        DeviceMem::alloc(&self.stream, bytes.max(4)).map_err(acl_error)
    }

    /// aclrtMemcpy is synchronous but not ordered after the stream: drain the stream first,
    /// so a copy never overtakes a launch that reads or writes the same memory.
    fn write(&self, mem: &DeviceMem, offset: usize, src: &[u8]) -> Result<()> {
        self.on_device()?;
        self.stream.synchronize().map_err(acl_error)?;
        mem.write(offset, src).map_err(acl_error)
    }

    fn read(&self, mem: &DeviceMem, offset: usize, dst: &mut [u8]) -> Result<()> {
        self.on_device()?;
        self.stream.synchronize().map_err(acl_error)?;
        mem.read(offset, dst).map_err(acl_error)
    }

    fn compile(&self, program: Program) -> Result<Binary> {
        let (code, _) = self.binary(program)?;
        self.on_device()?;
        Binary::load(&self.acl, &code, &program.kernel_names())
            .map_err(|e| acl_error(format!("{}: {e}", program.name())))
    }

    fn run(
        &self,
        program: &Binary,
        name: &str,
        work: Work,
        args: &[KernelArg<'_, DeviceMem>],
    ) -> Result<()> {
        let items = match work {
            Work::Items(n) => n,
            Work::Groups { .. } => {
                return Err(Error::unsupported(format!(
                    "ascend: kernel {name} needs work-groups with barriers (fast mode), which \
                     the Ascend mapping does not have"
                )))
            }
        };
        if items == 0 {
            return Ok(());
        }
        let packed: Vec<(ParamKind, u64)> = args
            .iter()
            .map(|a| match *a {
                KernelArg::Mem(m) => (ParamKind::Pointer, m.address()),
                KernelArg::U32(v) => (ParamKind::U32, u64::from(v)),
                KernelArg::U64(v) => (ParamKind::U64, v),
                KernelArg::F32(v) => (ParamKind::F32, u64::from(v.to_bits())),
            })
            .chain([(ParamKind::U64, items as u64)])
            .collect();
        self.on_device()?;
        program
            .launch(&self.stream, name, block_dim(items), &packed)
            .map_err(acl_error)
    }

    fn synchronize(&self) -> Result<()> {
        self.on_device()?;
        self.stream.synchronize().map_err(acl_error)
    }

    /// `aclrtGetMemInfo(ACL_HBM_MEM)` on this device; unknown (logged) if it fails.
    fn memory(&self) -> Option<concord_ops::DeviceMemory> {
        let (free, total) = self
            .on_device()
            .and_then(|()| self.acl.mem_info().map_err(acl_error))
            .map_err(|e| tracing::warn!("ascend device memory unknown: {e}"))
            .ok()?;
        Some(concord_ops::DeviceMemory { free, total })
    }
}

/// `exact` in fast mode: aclnn loaded from the ACL search path, or from exactly
/// `(opapi, nnopbase)`. A missing or broken library, or a missing symbol, is
/// [`Error::Unavailable`] naming it; exact mode does not need aclnn and is unaffected.
pub(crate) fn open_fast(
    exact: AscendBackend,
    libraries: Option<(&Path, &Path)>,
) -> Result<crate::fast::AscendFast> {
    let acl = exact.runtime().acl().clone();
    let nn = match libraries {
        None => Aclnn::load(acl),
        Some((opapi, nnopbase)) => Aclnn::load_from(acl, opapi, nnopbase),
    }
    .map_err(|e| {
        unavailable(format!(
            "fast mode needs CANN's operator library (aclnn): {e}; exact mode runs without it"
        ))
    })?;
    Ok(crate::fast::AscendFast::new(exact, nn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_dim_grows_with_items_and_is_capped() {
        assert_eq!(block_dim(1), 1);
        assert_eq!(block_dim(64), 1);
        assert_eq!(block_dim(65), 2);
        assert_eq!(block_dim(10_000_000), 1024);
    }

    #[test]
    fn options_name_the_arch_and_turn_contraction_off() {
        let o = compile_options("dav-2201");
        assert!(o.contains(&"--npu-arch=dav-2201".to_string()));
        assert!(o.contains(&"-ffp-contract=off".to_string()));
        assert!(!o.iter().any(|x| x.contains("fast-math")));
    }
}
