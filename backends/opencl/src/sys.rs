//! The thin layer over `opencl3` (and the `cl3` calls it re-exports): the only module of this
//! crate with `unsafe` code. Every call returns `Result`, never panicking on a vendor error
//! code. Buffers and events are raw handles released without panicking; the long-lived
//! context, queue, programs and kernels use opencl3's owning types, whose `Drop` panics only
//! if a release fails, which OpenCL allows only for an invalid handle.
//!
//! libOpenCL is loaded at run time by cl3's `dynamic` feature: a machine without it gets
//! `DLOPEN_RUNTIME_LOAD_FAILED` from the first call, which [`platforms`] turns into a reason.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use concord_core::{Error, Result};
use concord_kernels::host::{KernelArg, Work};
use opencl3::command_queue::{self as cq, CommandQueue};
use opencl3::context::Context;
use opencl3::device::{
    Device, CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_GPU, CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT,
    CL_FP_DENORM, CL_FP_INF_NAN, CL_FP_ROUND_TO_NEAREST,
};
use opencl3::error_codes::{error_text, ClError, DLOPEN_RUNTIME_LOAD_FAILED};
use opencl3::event::release_event;
use opencl3::kernel::{Kernel, CL_KERNEL_ARG_ADDRESS_GLOBAL};
use opencl3::memory::{create_buffer, release_mem_object, CL_MEM_READ_WRITE};
use opencl3::platform::get_platforms;
use opencl3::program::Program;
use opencl3::types::{cl_device_id, cl_event, cl_mem, CL_BLOCKING};

/// clGetPlatformIDs' answer from an ICD loader that found no platform (cl_khr_icd).
const CL_PLATFORM_NOT_FOUND_KHR: i32 = -1001;

/// A `concord_core::Error::Backend` naming the OpenCL function and its error code.
pub(crate) fn cl_error(function: &str, code: i32) -> Error {
    Error::Backend {
        backend: "opencl".into(),
        message: format!("{function} failed: {} ({code})", error_text(code)),
    }
}

fn wrap<T>(function: &str, r: std::result::Result<T, ClError>) -> Result<T> {
    r.map_err(|e| cl_error(function, e.0))
}

/// One OpenCL device and what the backend reports about it.
#[derive(Debug, Clone)]
pub(crate) struct DeviceDesc {
    pub id: cl_device_id,
    pub platform_name: String,
    pub platform_version: String,
    pub name: String,
    pub driver_version: String,
    pub is_gpu: bool,
    /// Why the device cannot run the numerics contract, if it cannot.
    pub unfit: Option<String>,
}

/// Every device of every platform, or the reason there is none.
pub(crate) fn platforms() -> std::result::Result<Vec<DeviceDesc>, String> {
    let platforms = get_platforms().map_err(|e| {
        if e.0 == DLOPEN_RUNTIME_LOAD_FAILED {
            "libOpenCL.so could not be loaded (install an ICD loader such as ocl-icd-libopencl1 \
             and a platform such as pocl-opencl-icd)"
                .to_string()
        } else if e.0 == CL_PLATFORM_NOT_FOUND_KHR {
            "the OpenCL loader found no platform (no ICD is installed; e.g. pocl-opencl-icd)"
                .to_string()
        } else {
            format!("clGetPlatformIDs failed: {} ({})", error_text(e.0), e.0)
        }
    })?;
    if platforms.is_empty() {
        return Err("the OpenCL loader found no platform (no ICD is installed)".into());
    }
    let mut out = Vec::new();
    for p in platforms {
        let platform_name = p.name().unwrap_or_else(|_| "unknown platform".into());
        let platform_version = p.version().unwrap_or_default();
        // CL_DEVICE_NOT_FOUND and friends: a platform without usable devices.
        let Ok(ids) = p.get_devices(CL_DEVICE_TYPE_ALL) else {
            continue;
        };
        for id in ids {
            let d = Device::new(id);
            out.push(DeviceDesc {
                id,
                platform_name: platform_name.clone(),
                platform_version: platform_version.clone(),
                name: d.name().unwrap_or_else(|_| "unknown device".into()),
                driver_version: d.driver_version().unwrap_or_default(),
                is_gpu: d
                    .dev_type()
                    .map(|t| t & CL_DEVICE_TYPE_GPU != 0)
                    .unwrap_or(false),
                unfit: unfit(&d),
            });
        }
    }
    if out.is_empty() {
        return Err("no OpenCL platform reports a device".into());
    }
    Ok(out)
}

/// Why `d` cannot compute the contract's IEEE f32 arithmetic, or `None`.
fn unfit(d: &Device) -> Option<String> {
    let c_version = d.opencl_c_version().unwrap_or_default();
    let major_minor = c_version
        .strip_prefix("OpenCL C ")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.split_once('.'))
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    match major_minor {
        Some(v) if v >= (1, 2) => {}
        _ => {
            return Some(format!(
                "needs OpenCL C 1.2, the device offers {c_version:?}"
            ))
        }
    }
    if d.profile().unwrap_or_default() != "FULL_PROFILE" {
        return Some("needs the full profile (64-bit integers)".into());
    }
    let need =
        CL_FP_DENORM | CL_FP_INF_NAN | CL_FP_ROUND_TO_NEAREST | CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT;
    let have = d.single_fp_config().unwrap_or(0);
    if have & need != need {
        return Some(format!(
            "f32 lacks IEEE features the contract needs (denormals, inf/NaN, round to nearest, \
             correctly rounded divide and sqrt): CL_DEVICE_SINGLE_FP_CONFIG = {have:#x}"
        ));
    }
    None
}

/// Device memory: an OpenCL buffer of bytes, released when dropped (OpenCL keeps it alive
/// until the commands that use it have finished). Unlike opencl3's owning types, dropping
/// never panics: a failed clReleaseMemObject (impossible for a valid handle) is ignored.
pub(crate) struct Mem {
    raw: cl_mem,
    /// Bytes it holds, returned to its queue's count when dropped.
    bytes: usize,
    held: Arc<AtomicUsize>,
}

impl Mem {
    fn raw(&self) -> cl_mem {
        self.raw
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: `raw` came from clCreateBuffer and is released exactly once, here.
        let _ = unsafe { release_mem_object(self.raw) };
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

// SAFETY: a cl_mem may be used and released from any thread (OpenCL API thread safety).
unsafe impl Send for Mem {}
// SAFETY: as above; Mem has no interior state besides the handle.
unsafe impl Sync for Mem {}

/// Releases the event an enqueue returned (we never wait on events: the queue is in order and
/// blocking calls wait themselves). Errors from clReleaseEvent are ignored.
fn release(function: &str, ev: std::result::Result<cl_event, i32>) -> Result<()> {
    let ev = ev.map_err(|code| cl_error(function, code))?;
    // SAFETY: `ev` is the event just returned by the enqueue call, released exactly once.
    let _ = unsafe { release_event(ev) };
    Ok(())
}

/// A scalar or buffer kernel argument of this backend.
pub(crate) type Arg<'a> = KernelArg<'a, Mem>;

/// What a kernel parameter takes, from the program's argument info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    Mem,
    U32,
    U64,
    F32,
}

/// A kernel with its parameter list, locked while its arguments are set and it is enqueued
/// (clSetKernelArg is not thread-safe on one kernel object).
pub(crate) struct KernelFn {
    name: &'static str,
    kernel: Mutex<Kernel>,
    params: Vec<ArgKind>,
    local: usize,
    /// The largest work-group the device runs this kernel in.
    max_local: usize,
}

/// The work-group size kernels are launched with (capped by what the device and kernel allow).
const LOCAL_SIZE: usize = 64;

/// A context and an in-order command queue on one device.
pub(crate) struct Queue {
    context: Context,
    queue: CommandQueue,
    device: cl_device_id,
    /// Bytes of the buffers of this context that are alive.
    held: Arc<AtomicUsize>,
}

// SAFETY: OpenCL context, queue and device handles may be used from any thread; every
// OpenCL API call is thread-safe except clSetKernelArg on one kernel (guarded by a Mutex).
unsafe impl Send for Queue {}
// SAFETY: as above.
unsafe impl Sync for Queue {}
// SAFETY: as above; the kernel object is only touched under its Mutex.
unsafe impl Send for KernelFn {}
// SAFETY: as above.
unsafe impl Sync for KernelFn {}

impl Queue {
    /// A context and in-order queue on `device`.
    pub(crate) fn new(device: cl_device_id) -> Result<Queue> {
        let context = wrap(
            "clCreateContext",
            Context::from_device(&Device::new(device)),
        )?;
        #[allow(deprecated)] // clCreateCommandQueue: the OpenCL 1.2 call, valid everywhere.
        let queue = wrap(
            "clCreateCommandQueue",
            CommandQueue::create_default(&context, 0),
        )?;
        Ok(Queue {
            context,
            queue,
            device,
            held: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// `(free, total)` bytes: CL_DEVICE_GLOBAL_MEM_SIZE, and that minus the buffers this
    /// context holds — OpenCL 1.2 has no query for free memory, so what other processes or
    /// contexts hold is not seen.
    pub(crate) fn memory(&self) -> Result<(usize, usize)> {
        let total = Device::new(self.device)
            .global_mem_size()
            .map_err(|e| cl_error("clGetDeviceInfo(CL_DEVICE_GLOBAL_MEM_SIZE)", e.0))?;
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        Ok((
            total.saturating_sub(self.held.load(Ordering::Relaxed)),
            total,
        ))
    }

    /// Allocates `bytes` of device memory (at least 4, as OpenCL refuses empty buffers).
    pub(crate) fn alloc(&self, bytes: usize) -> Result<Mem> {
        let bytes = bytes.max(4);
        // SAFETY: no host pointer is passed (null, with flags that do not use one).
        let raw = unsafe {
            create_buffer(
                self.context.get(),
                CL_MEM_READ_WRITE,
                bytes,
                ptr::null_mut(),
            )
        };
        let raw = raw.map_err(|code| cl_error("clCreateBuffer", code))?;
        self.held.fetch_add(bytes, Ordering::Relaxed);
        Ok(Mem {
            raw,
            bytes,
            held: self.held.clone(),
        })
    }

    /// Copies `src` into `mem` at byte `offset`, waiting until the copy is done.
    /// The caller has checked that the range lies inside the buffer.
    pub(crate) fn write(&self, mem: &Mem, offset: usize, src: &[u8]) -> Result<()> {
        if src.is_empty() {
            return Ok(());
        }
        // SAFETY: a blocking write reads `src.len()` bytes of the live slice `src` before it
        // returns; OpenCL checks the range against the buffer (CL_INVALID_VALUE otherwise).
        let ev = unsafe {
            cq::enqueue_write_buffer(
                self.queue.get(),
                mem.raw(),
                CL_BLOCKING,
                offset,
                src.len(),
                src.as_ptr() as *const c_void,
                0,
                ptr::null(),
            )
        };
        release("clEnqueueWriteBuffer", ev)
    }

    /// Copies bytes at `offset` of `mem` into `dst` after all enqueued work, waiting for it.
    pub(crate) fn read(&self, mem: &Mem, offset: usize, dst: &mut [u8]) -> Result<()> {
        if dst.is_empty() {
            return Ok(());
        }
        // SAFETY: a blocking read writes `dst.len()` bytes into the live, exclusively borrowed
        // slice `dst` before it returns; OpenCL checks the range against the buffer.
        let ev = unsafe {
            cq::enqueue_read_buffer(
                self.queue.get(),
                mem.raw(),
                CL_BLOCKING,
                offset,
                dst.len(),
                dst.as_mut_ptr() as *mut c_void,
                0,
                ptr::null(),
            )
        };
        release("clEnqueueReadBuffer", ev)
    }

    /// Waits for everything enqueued.
    pub(crate) fn finish(&self) -> Result<()> {
        wrap("clFinish", self.queue.finish())
    }

    /// Builds `source` with `options`; the error carries the build log.
    pub(crate) fn build(&self, source: &str, options: &str) -> Result<Program> {
        Program::create_and_build_from_source(&self.context, source, options).map_err(|log| {
            Error::Backend {
                backend: "opencl".into(),
                message: format!("clBuildProgram failed: {log}"),
            }
        })
    }

    /// The kernel `name` of a built program, with its parameter kinds.
    pub(crate) fn kernel(&self, program: &Program, name: &'static str) -> Result<KernelFn> {
        let kernel = wrap("clCreateKernel", Kernel::create(program, name))?;
        let count = wrap("clGetKernelInfo", kernel.num_args())?;
        let mut params = Vec::with_capacity(count as usize);
        for i in 0..count {
            let space = wrap("clGetKernelArgInfo", kernel.get_arg_address_qualifier(i))?;
            let kind = if space == CL_KERNEL_ARG_ADDRESS_GLOBAL {
                ArgKind::Mem
            } else {
                let ty = wrap("clGetKernelArgInfo", kernel.get_arg_type_name(i))?;
                match ty.trim_end_matches('\0') {
                    "uint" | "u32" | "unsigned int" => ArgKind::U32,
                    "ulong" | "u64" | "unsigned long" => ArgKind::U64,
                    "float" => ArgKind::F32,
                    other => {
                        return Err(Error::Backend {
                            backend: "opencl".into(),
                            message: format!("kernel {name}: parameter {i} has type {other:?}"),
                        })
                    }
                }
            };
            params.push(kind);
        }
        let max = wrap(
            "clGetKernelWorkGroupInfo",
            kernel.get_work_group_size(self.device),
        )?;
        Ok(KernelFn {
            name,
            kernel: Mutex::new(kernel),
            params,
            local: LOCAL_SIZE.min(max.max(1)),
            max_local: max.max(1),
        })
    }

    /// Enqueues `k` over `work` (independent items rounded up to whole work-groups, whose
    /// kernels guard their index, or exact groups) with `args`, which must match the kernel's
    /// parameters one for one.
    pub(crate) fn launch(&self, k: &KernelFn, work: Work, args: &[Arg]) -> Result<()> {
        if args.len() != k.params.len() {
            return Err(Error::Backend {
                backend: "opencl".into(),
                message: format!(
                    "kernel {}: {} arguments for {} parameters",
                    k.name,
                    args.len(),
                    k.params.len()
                ),
            });
        }
        for (i, (a, p)) in args.iter().zip(&k.params).enumerate() {
            let kind = match a {
                KernelArg::Mem(_) => ArgKind::Mem,
                KernelArg::U32(_) => ArgKind::U32,
                KernelArg::U64(_) => ArgKind::U64,
                KernelArg::F32(_) => ArgKind::F32,
            };
            if kind != *p {
                return Err(Error::Backend {
                    backend: "opencl".into(),
                    message: format!(
                        "kernel {}: argument {i} is {kind:?}, expected {p:?}",
                        k.name
                    ),
                });
            }
        }
        let (groups, local) = work.grid(k.local);
        if groups == 0 {
            return Ok(());
        }
        if local > k.max_local {
            return Err(Error::unsupported(format!(
                "kernel {}: work-groups of {local} items, the device runs at most {}",
                k.name, k.max_local
            )));
        }
        let kernel = k.kernel.lock().unwrap_or_else(|e| e.into_inner());
        for (i, a) in args.iter().enumerate() {
            let i = i as u32;
            // SAFETY: each value has the kind (global buffer, uint, ulong, float) and so the
            // size the kernel declares for parameter i, checked above against the program's
            // argument info; a cl_mem is a live buffer of this context.
            let r = unsafe {
                match a {
                    KernelArg::Mem(m) => kernel.set_arg(i, &m.raw()),
                    KernelArg::U32(v) => kernel.set_arg(i, v),
                    KernelArg::U64(v) => kernel.set_arg(i, v),
                    KernelArg::F32(v) => kernel.set_arg(i, v),
                }
            };
            wrap("clSetKernelArg", r)?;
        }
        let (global, local) = ([groups * local], [local]);
        // SAFETY: every argument was set just above under the kernel's lock; the work sizes
        // are one-dimensional and `global` is a multiple of `local`. The kernels guard their
        // index, and the host code sizes every buffer for the dimensions it passes.
        let ev = unsafe {
            cq::enqueue_nd_range_kernel(
                self.queue.get(),
                kernel.get(),
                1,
                ptr::null(),
                global.as_ptr(),
                local.as_ptr(),
                0,
                ptr::null(),
            )
        };
        release("clEnqueueNDRangeKernel", ev)
    }
}
