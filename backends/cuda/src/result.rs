//! The thin layer over cudarc's driver API: context, stream, memory, modules and launches.
//! The only module besides `sys` with `unsafe` code: cudarc's raw copies and kernel launches
//! are `unsafe` because the driver cannot check pointer ranges or argument lists; the safe
//! functions here check what the driver cannot (ranges against the allocation, the launch
//! size) and take argument lists from the shared host code, whose lists CI checks against
//! OpenCL's kernel-argument information on PoCL.
//!
//! Only reach this module after `sys::driver_version` has found a driver new enough for the
//! bindings: cudarc loads every driver symbol it knows on first use and panics on a missing
//! one (libcuda absent, or older than the `cuda-12020` bindings).
#![allow(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use concord_core::{Error, Result};
use concord_kernels::host::{KernelArg, Work};
use cudarc::driver::{
    result, CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DriverError,
    LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;

/// Threads per block. Kernels are 1-D and guard their index, and none uses shared memory or
/// barriers, so the block size changes no result (docs/numerics.md), only occupancy.
const BLOCK: u32 = 256;

/// A driver error as a backend error naming the call.
pub(crate) fn cuda_error(call: &str, e: DriverError) -> Error {
    Error::Backend {
        backend: "cuda".into(),
        message: format!("{call} failed: {e}"),
    }
}

/// Device memory: a cudarc allocation of bytes, freed in stream order when dropped.
pub(crate) type DeviceMem = CudaSlice<u8>;

/// One device: its primary context and the one in-order stream every copy and launch uses.
pub(crate) struct Device {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
}

impl Device {
    /// The primary context of device `ordinal` and a new stream on it.
    pub(crate) fn open(ordinal: usize) -> Result<Device> {
        let count = CudaContext::device_count().map_err(|e| cuda_error("cuDeviceGetCount", e))?;
        if count <= 0 {
            return Err(Error::invalid("the CUDA driver reports no device"));
        }
        if ordinal >= count as usize {
            return Err(Error::invalid(format!(
                "CUDA device {ordinal} requested, the driver reports {count}"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| cuda_error("cuCtxCreate", e))?;
        // SAFETY: every copy and launch goes through the one stream below, in order, so
        // cudarc's cross-stream event tracking has nothing to order; disabling it before any
        // allocation exists is what the function's contract asks.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(|e| cuda_error("cuStreamCreate", e))?;
        Ok(Device { ctx, stream })
    }

    /// The device's name.
    pub(crate) fn name(&self) -> Result<String> {
        self.ctx
            .name()
            .map_err(|e| cuda_error("cuDeviceGetName", e))
    }

    /// The compute capability as an architecture name, `sm_90` for (9, 0).
    pub(crate) fn arch(&self) -> Result<String> {
        let (major, minor) = self
            .ctx
            .compute_capability()
            .map_err(|e| cuda_error("cuDeviceGetAttribute", e))?;
        Ok(format!("sm_{major}{minor}"))
    }

    /// `bytes` of zeroed device memory (at least 4: the driver refuses empty allocations).
    pub(crate) fn alloc(&self, bytes: usize) -> Result<DeviceMem> {
        self.stream
            .alloc_zeros::<u8>(bytes.max(4))
            .map_err(|e| cuda_error("cuMemAlloc", e))
    }

    /// Copies `src` into `mem` at byte `offset`, in stream order. No wait: from pageable host
    /// memory, cuMemcpyHtoDAsync returns only once `src` has been copied to staging memory
    /// (CUDA driver API, "API synchronization behavior"), so `src` may be reused at once, and
    /// per-step uploads (ids, positions) cost no host synchronisation.
    pub(crate) fn write(&self, mem: &DeviceMem, offset: usize, src: &[u8]) -> Result<()> {
        check_range(mem, offset, src.len())?;
        if src.is_empty() {
            return Ok(());
        }
        let (base, _record) = mem.device_ptr(&self.stream);
        // SAFETY: [offset, offset + len) lies inside the allocation (checked above); `src`
        // is a live pageable slice, read completely before the call returns (see above).
        unsafe {
            result::memcpy_htod_async(base + offset as u64, src, self.stream.cu_stream())
                .map_err(|e| cuda_error("cuMemcpyHtoDAsync", e))
        }
    }

    /// Copies bytes at `offset` of `mem` into `dst` after all enqueued work, waiting for it.
    pub(crate) fn read(&self, mem: &DeviceMem, offset: usize, dst: &mut [u8]) -> Result<()> {
        check_range(mem, offset, dst.len())?;
        if dst.is_empty() {
            return self.synchronize();
        }
        let (base, _record) = mem.device_ptr(&self.stream);
        // SAFETY: the range lies inside the allocation (checked above); `dst` is exclusively
        // borrowed and the stream is synchronised before it is released.
        unsafe {
            result::memcpy_dtoh_async(dst, base + offset as u64, self.stream.cu_stream())
                .map_err(|e| cuda_error("cuMemcpyDtoHAsync", e))?;
        }
        self.synchronize()
    }

    /// (free, total) bytes of the device's memory (cuMemGetInfo on this context).
    pub(crate) fn memory(&self) -> Result<(usize, usize)> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| cuda_error("cuCtxSetCurrent", e))?;
        result::mem_get_info().map_err(|e| cuda_error("cuMemGetInfo", e))
    }

    /// Waits for everything enqueued; reports any error the driver recorded meanwhile
    /// (cudarc records errors of frees in `Drop` instead of panicking).
    pub(crate) fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| cuda_error("cuStreamSynchronize", e))?;
        self.ctx
            .check_err()
            .map_err(|e| cuda_error("an earlier asynchronous call", e))
    }

    /// Loads a module from a cubin (or PTX) file and looks up `names` in it.
    pub(crate) fn load(&self, path: &Path, names: &[&'static str]) -> Result<Module> {
        let Some(utf8) = path.to_str() else {
            return Err(Error::invalid(format!(
                "cuda: module path {} is not UTF-8 (set CONCORD_CACHE_DIR to a UTF-8 path)",
                path.display()
            )));
        };
        if utf8.contains('\0') {
            return Err(Error::invalid("cuda: module path holds a NUL byte"));
        }
        let module = self
            .ctx
            .load_module(Ptx::from_file(utf8))
            .map_err(|e| cuda_error(&format!("cuModuleLoad({utf8})"), e))?;
        let functions = names
            .iter()
            .map(|&n| {
                module
                    .load_function(n)
                    .map(|f| (n, f))
                    .map_err(|e| cuda_error(&format!("cuModuleGetFunction({n})"), e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Module {
            _module: module,
            functions,
        })
    }

    /// Launches `f` over `work` (independent threads in whole blocks of [`BLOCK`], whose
    /// kernels guard their index, or exact blocks) with `args`, in stream order.
    pub(crate) fn launch(
        &self,
        f: &CudaFunction,
        work: Work,
        args: &[KernelArg<'_, DeviceMem>],
    ) -> Result<()> {
        let (groups, size) = work.grid(BLOCK as usize);
        if groups == 0 {
            return Ok(());
        }
        let blocks = u32::try_from(groups)
            .ok()
            .filter(|&b| b <= i32::MAX as u32)
            .ok_or_else(|| {
                Error::unsupported(format!("cuda: {groups} blocks exceed one launch's grid"))
            })?;
        let threads = u32::try_from(size)
            .ok()
            .filter(|&t| t <= 1024)
            .ok_or_else(|| Error::unsupported(format!("cuda: blocks of {size} threads")))?;
        let mut builder = self.stream.launch_builder(f);
        for a in args {
            match a {
                KernelArg::Mem(m) => builder.arg(*m),
                KernelArg::U32(v) => builder.arg(v),
                KernelArg::U64(v) => builder.arg(v),
                KernelArg::F32(v) => builder.arg(v),
            };
        }
        let config = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the argument list is the kernel's parameter list one for one (built by
        // concord_kernels::host, whose lists OpenCL checks against its kernel-argument info
        // in CI): device pointers for GLOBAL parameters, u32/u64/f32 for scalars, each a live
        // value borrowed from `args`. Every buffer is sized by the host code for the
        // dimensions it passes, and every kernel guards its index against the range.
        unsafe { builder.launch(config) }
            .map(|_| ())
            .map_err(|e| cuda_error("cuLaunchKernel", e))
    }
}

/// A loaded module and its kernels.
pub(crate) struct Module {
    _module: Arc<CudaModule>,
    functions: Vec<(&'static str, CudaFunction)>,
}

impl Module {
    /// The kernel `name`.
    pub(crate) fn function(&self, name: &str) -> Result<&CudaFunction> {
        self.functions
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
            .ok_or_else(|| Error::Backend {
                backend: "cuda".into(),
                message: format!("no kernel {name} in the module"),
            })
    }
}

fn check_range(mem: &DeviceMem, offset: usize, len: usize) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= mem.len() => Ok(()),
        _ => Err(Error::invalid(format!(
            "copy of {len} bytes at offset {offset} outside a device allocation of {} bytes",
            mem.len()
        ))),
    }
}
