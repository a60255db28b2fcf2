//! The stagings' driver calls and [`DeviceBuffer`]: every `unsafe` call of the staging module
//! is here, each checked against what the caller holds (an allocation of known length).

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use concord_core::{Error, Result};
use libloading::Library;

use super::sys::*;
use super::DeviceStaging;
use crate::vendor::sys::{open_first as sys_open_first, symbol};

/// Device memory of a [`DeviceStaging`], freed when dropped — unless
/// [`leak`](DeviceBuffer::leak)ed because a failed collective may still write to it.
pub struct DeviceBuffer {
    staging: Arc<dyn DeviceStaging>,
    address: u64,
    len: usize,
    leaked: bool,
}

impl DeviceBuffer {
    /// `len` bytes (uninitialised) on `staging`'s device.
    pub fn new(staging: &Arc<dyn DeviceStaging>, len: usize) -> Result<DeviceBuffer> {
        // SAFETY: the address is freed once, by `Drop`, which a collective using it never
        // outlives (the communicator waits for the stream or leaks the buffer).
        let address = unsafe { staging.alloc_raw(len.max(1))? };
        Ok(DeviceBuffer {
            staging: Arc::clone(staging),
            address,
            len,
            leaked: false,
        })
    }

    /// A buffer holding a copy of `bytes`.
    pub fn from_host(staging: &Arc<dyn DeviceStaging>, bytes: &[u8]) -> Result<DeviceBuffer> {
        let buffer = DeviceBuffer::new(staging, bytes.len())?;
        buffer.upload(0, bytes)?;
        Ok(buffer)
    }

    /// The device address (what the vendor library takes).
    pub fn address(&self) -> u64 {
        self.address
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device address `offset` bytes in, checked to leave `bytes` bytes in the buffer.
    pub fn address_at(&self, offset: usize, bytes: usize) -> Result<u64> {
        match offset.checked_add(bytes) {
            Some(end) if end <= self.len => Ok(self.address + offset as u64),
            _ => Err(Error::invalid(format!(
                "{bytes} bytes at offset {offset} of a device buffer of {} bytes",
                self.len
            ))),
        }
    }

    /// Copies `src` to the buffer at `offset`.
    pub fn upload(&self, offset: usize, src: &[u8]) -> Result<()> {
        let address = self.address_at(offset, src.len())?;
        if src.is_empty() {
            return Ok(());
        }
        // SAFETY: `address_at` checked the range lies in this live allocation; the
        // communicator uploads only while no collective is enqueued.
        unsafe { self.staging.upload_raw(address, src) }
    }

    /// Copies the buffer from `offset` to `dst`.
    pub fn download(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        let address = self.address_at(offset, dst.len())?;
        if dst.is_empty() {
            return Ok(());
        }
        // SAFETY: as in `upload`; downloads happen after the stream finished.
        unsafe { self.staging.download_raw(address, dst) }
    }

    /// Never frees the memory: a collective that timed out may still write to it.
    pub fn leak(mut self) {
        self.leaked = true;
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if !self.leaked {
            // SAFETY: the address came from `alloc_raw` of this staging and is dropped once.
            unsafe { self.staging.free_raw(self.address) };
        }
    }
}

/// Host memory standing in for device memory, for tests: allocations are heap blocks whose
/// address the stand-in NCCL writes to, and the "stream" is a counter of unfinished
/// operations (an `int` the stand-in increments when it enqueues an operation and decrements
/// when the operation is done — the stand-in's documented stream contract, see
/// comm/standin/nccl_standin.c).
pub struct HostStaging {
    /// Live allocations by base address.
    blocks: Mutex<BTreeMap<u64, Box<[u8]>>>,
    pending: Box<AtomicI32>,
}

impl Default for HostStaging {
    fn default() -> Self {
        HostStaging::new()
    }
}

impl HostStaging {
    /// A staging with no allocation and an idle stream.
    pub fn new() -> HostStaging {
        HostStaging {
            blocks: Mutex::new(BTreeMap::new()),
            pending: Box::new(AtomicI32::new(0)),
        }
    }

    /// Runs `f` on the bytes `[address, address + len)` of a live allocation.
    fn with_bytes<T>(&self, address: u64, len: usize, f: impl FnOnce(&mut [u8]) -> T) -> Result<T> {
        let mut blocks = self
            .blocks
            .lock()
            .map_err(|_| Error::invalid("host staging: a thread panicked holding its lock"))?;
        // The allocation with the greatest base at or below `address`, if the range fits it.
        let found = blocks
            .range_mut(..=address)
            .next_back()
            .and_then(|(&base, block)| {
                let start = usize::try_from(address - base).ok()?;
                let end = start.checked_add(len)?;
                block.get_mut(start..end)
            });
        let bytes = found.ok_or_else(|| {
            Error::invalid(format!(
                "host staging: no allocation holds {len} bytes at {address:#x}"
            ))
        })?;
        Ok(f(bytes))
    }
}

impl DeviceStaging for HostStaging {
    fn describe(&self) -> String {
        "host memory (test staging)".into()
    }
    fn make_current(&self) -> Result<()> {
        Ok(())
    }
    fn stream(&self) -> *mut c_void {
        self.pending.as_ptr().cast()
    }
    fn stream_done(&self) -> Result<bool> {
        Ok(self.pending.load(Ordering::Acquire) == 0)
    }
    unsafe fn alloc_raw(&self, bytes: usize) -> Result<u64> {
        let block = vec![0u8; bytes].into_boxed_slice();
        let address = block.as_ptr() as u64;
        self.blocks
            .lock()
            .map_err(|_| Error::invalid("host staging: a thread panicked holding its lock"))?
            .insert(address, block);
        Ok(address)
    }
    unsafe fn free_raw(&self, address: u64) {
        if let Ok(mut blocks) = self.blocks.lock() {
            blocks.remove(&address);
        }
    }
    unsafe fn upload_raw(&self, address: u64, src: &[u8]) -> Result<()> {
        // The stand-in writes these blocks through their address while an operation runs;
        // uploads and downloads happen only while none does (the caller's promise).
        self.with_bytes(address, src.len(), |b| b.copy_from_slice(src))
    }
    unsafe fn download_raw(&self, address: u64, dst: &mut [u8]) -> Result<()> {
        self.with_bytes(address, dst.len(), |b| dst.copy_from_slice(b))
    }
}

/// The first of `names` that opens, with its name (`vendor::sys::open_first`'s search); the
/// error names the backend and every name tried.
fn open_first(what: &str, names: &[&str]) -> Result<(Library, String)> {
    let candidates: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
    let (library, path) = sys_open_first(&candidates).map_err(|reason| Error::Unavailable {
        backend: what.into(),
        reason,
    })?;
    Ok((library, path.display().to_string()))
}

/// The CUDA driver entry points a staging calls.
struct CudaApi {
    ctx_set_current: CuCtxSetCurrent,
    stream_query: CuStreamQuery,
    mem_alloc: CuMemAlloc,
    mem_free: CuMemFree,
    memcpy_htod: CuMemcpyHtoD,
    memcpy_dtoh: CuMemcpyDtoH,
    get_error_string: CuGetErrorString,
}

/// A CUDA device's primary context and a stream on it, through the driver API (libcuda,
/// loaded at run time). Untested: no GPU where this was written.
pub struct CudaStaging {
    api: CudaApi,
    ordinal: usize,
    context: CuContext,
    stream: CuStream,
    _library: Library,
}

// SAFETY: the context and stream are driver handles valid in any thread of the process; every
// call makes the context current on the calling thread first.
unsafe impl Send for CudaStaging {}
// SAFETY: as above; the driver API is thread-safe.
unsafe impl Sync for CudaStaging {}

impl CudaStaging {
    /// Retains the primary context of device `ordinal` (the one the CUDA runtime, and so
    /// NCCL, uses) and creates a stream on it.
    pub fn open(ordinal: usize) -> Result<CudaStaging> {
        let (lib, _) = open_first("cuda", CUDA_NAMES)?;
        let unavailable = |reason: String| Error::Unavailable {
            backend: "cuda".into(),
            reason,
        };
        // SAFETY: the prototypes are cuda.h's (see `sys`); the pointers are kept beside the
        // library, which outlives them.
        let (init, device_get, retain, create, api) = unsafe {
            (
                symbol::<CuInit>(&lib, "cuInit").map_err(unavailable)?,
                symbol::<CuDeviceGet>(&lib, "cuDeviceGet").map_err(unavailable)?,
                symbol::<CuDevicePrimaryCtxRetain>(&lib, "cuDevicePrimaryCtxRetain")
                    .map_err(unavailable)?,
                symbol::<CuStreamCreate>(&lib, "cuStreamCreate").map_err(unavailable)?,
                CudaApi {
                    ctx_set_current: symbol(&lib, "cuCtxSetCurrent").map_err(unavailable)?,
                    stream_query: symbol(&lib, "cuStreamQuery").map_err(unavailable)?,
                    mem_alloc: symbol(&lib, "cuMemAlloc_v2").map_err(unavailable)?,
                    mem_free: symbol(&lib, "cuMemFree_v2").map_err(unavailable)?,
                    memcpy_htod: symbol(&lib, "cuMemcpyHtoD_v2").map_err(unavailable)?,
                    memcpy_dtoh: symbol(&lib, "cuMemcpyDtoH_v2").map_err(unavailable)?,
                    get_error_string: symbol(&lib, "cuGetErrorString").map_err(unavailable)?,
                },
            )
        };
        let ordinal_c = c_int::try_from(ordinal)
            .map_err(|_| Error::invalid(format!("CUDA device {ordinal}")))?;
        let check = |call: &str, code: CuResult| cuda_check(&api, ordinal, call, code);
        let (mut device, mut context, mut stream) = (0, std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: each call gets live out-pointers; the context is made current before the
        // stream is created on it.
        unsafe {
            check("cuInit", init(0))?;
            check("cuDeviceGet", device_get(&mut device, ordinal_c))?;
            check("cuDevicePrimaryCtxRetain", retain(&mut context, device))?;
            check("cuCtxSetCurrent", (api.ctx_set_current)(context))?;
            check("cuStreamCreate", create(&mut stream, 0))?;
        }
        Ok(CudaStaging {
            api,
            ordinal,
            context,
            stream,
            _library: lib,
        })
    }

    fn check(&self, call: &str, code: CuResult) -> Result<()> {
        cuda_check(&self.api, self.ordinal, call, code)
    }
}

fn cuda_check(api: &CudaApi, ordinal: usize, call: &str, code: CuResult) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    let mut text: *const c_char = std::ptr::null();
    // SAFETY: cuGetErrorString writes a pointer to a static string (or leaves it null).
    let text = if unsafe { (api.get_error_string)(code, &mut text) } == 0 && !text.is_null() {
        // SAFETY: non-null: a NUL-terminated static string of the driver.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    } else {
        "unknown error".into()
    };
    Err(Error::Backend {
        backend: "cuda".into(),
        message: format!("device {ordinal}: {call} failed with CUresult {code}: {text}"),
    })
}

impl DeviceStaging for CudaStaging {
    fn describe(&self) -> String {
        format!("cuda device {}", self.ordinal)
    }
    fn make_current(&self) -> Result<()> {
        // SAFETY: the context was retained in `open` and is never released.
        self.check("cuCtxSetCurrent", unsafe {
            (self.api.ctx_set_current)(self.context)
        })
    }
    fn stream(&self) -> *mut c_void {
        self.stream
    }
    fn stream_done(&self) -> Result<bool> {
        self.make_current()?;
        // SAFETY: the stream was created in `open` and is never destroyed.
        match unsafe { (self.api.stream_query)(self.stream) } {
            0 => Ok(true),
            CUDA_ERROR_NOT_READY => Ok(false),
            code => self.check("cuStreamQuery", code).map(|_| false),
        }
    }
    unsafe fn alloc_raw(&self, bytes: usize) -> Result<u64> {
        self.make_current()?;
        let mut address: CuDevicePtr = 0;
        // SAFETY: a live out-pointer; the context is current.
        self.check("cuMemAlloc_v2", unsafe {
            (self.api.mem_alloc)(&mut address, bytes)
        })?;
        Ok(address)
    }
    unsafe fn free_raw(&self, address: u64) {
        if self.make_current().is_ok() {
            // SAFETY: the caller's promise: an address of `alloc_raw`, freed once.
            let code = unsafe { (self.api.mem_free)(address) };
            if let Err(e) = self.check("cuMemFree_v2", code) {
                tracing::warn!("{e}");
            }
        }
    }
    unsafe fn upload_raw(&self, address: u64, src: &[u8]) -> Result<()> {
        self.make_current()?;
        // SAFETY: the caller's promise: `src.len()` bytes of a live allocation, idle.
        self.check("cuMemcpyHtoD_v2", unsafe {
            (self.api.memcpy_htod)(address, src.as_ptr().cast(), src.len())
        })
    }
    unsafe fn download_raw(&self, address: u64, dst: &mut [u8]) -> Result<()> {
        self.make_current()?;
        // SAFETY: as in `upload_raw`, into `dst`'s `dst.len()` bytes.
        self.check("cuMemcpyDtoH_v2", unsafe {
            (self.api.memcpy_dtoh)(dst.as_mut_ptr().cast(), address, dst.len())
        })
    }
}

/// The HIP runtime entry points a staging calls.
struct HipApi {
    set_device: HipSetDevice,
    stream_query: HipStreamQuery,
    malloc: HipMalloc,
    free: HipFree,
    memcpy: HipMemcpy,
    get_error_string: HipGetErrorString,
}

/// A HIP device and a stream on it (libamdhip64, loaded at run time). Untested: no GPU
/// where this was written.
pub struct HipStaging {
    api: HipApi,
    ordinal: c_int,
    stream: HipStream,
    _library: Library,
}

// SAFETY: the stream is a runtime handle valid in any thread; every call selects the device
// on the calling thread first.
unsafe impl Send for HipStaging {}
// SAFETY: as above; the HIP runtime is thread-safe.
unsafe impl Sync for HipStaging {}

impl HipStaging {
    /// Device `ordinal` and a new stream on it.
    pub fn open(ordinal: usize) -> Result<HipStaging> {
        let (lib, _) = open_first("rocm", HIP_NAMES)?;
        let unavailable = |reason: String| Error::Unavailable {
            backend: "rocm".into(),
            reason,
        };
        // SAFETY: the prototypes are hip_runtime_api.h's (see `sys`); the pointers are kept
        // beside the library.
        let (create, api) = unsafe {
            (
                symbol::<HipStreamCreate>(&lib, "hipStreamCreate").map_err(unavailable)?,
                HipApi {
                    set_device: symbol(&lib, "hipSetDevice").map_err(unavailable)?,
                    stream_query: symbol(&lib, "hipStreamQuery").map_err(unavailable)?,
                    malloc: symbol(&lib, "hipMalloc").map_err(unavailable)?,
                    free: symbol(&lib, "hipFree").map_err(unavailable)?,
                    memcpy: symbol(&lib, "hipMemcpy").map_err(unavailable)?,
                    get_error_string: symbol(&lib, "hipGetErrorString").map_err(unavailable)?,
                },
            )
        };
        let ordinal = c_int::try_from(ordinal)
            .map_err(|_| Error::invalid(format!("HIP device {ordinal}")))?;
        let mut staging = HipStaging {
            api,
            ordinal,
            stream: std::ptr::null_mut(),
            _library: lib,
        };
        staging.make_current()?;
        let mut stream = std::ptr::null_mut();
        // SAFETY: a live out-pointer; the device is selected.
        staging.check("hipStreamCreate", unsafe { create(&mut stream) })?;
        staging.stream = stream;
        Ok(staging)
    }

    fn check(&self, call: &str, code: HipError) -> Result<()> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: hipGetErrorString returns a static NUL-terminated string (or null).
        let text = unsafe { (self.api.get_error_string)(code) };
        let text = if text.is_null() {
            "unknown error".into()
        } else {
            // SAFETY: non-null: a static NUL-terminated string of the runtime.
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        };
        Err(Error::Backend {
            backend: "rocm".into(),
            message: format!(
                "device {}: {call} failed with hipError_t {code}: {text}",
                self.ordinal
            ),
        })
    }
}

impl DeviceStaging for HipStaging {
    fn describe(&self) -> String {
        format!("hip device {}", self.ordinal)
    }
    fn make_current(&self) -> Result<()> {
        // SAFETY: no pointer involved.
        self.check("hipSetDevice", unsafe {
            (self.api.set_device)(self.ordinal)
        })
    }
    fn stream(&self) -> *mut c_void {
        self.stream
    }
    fn stream_done(&self) -> Result<bool> {
        self.make_current()?;
        // SAFETY: the stream was created in `open` and is never destroyed.
        match unsafe { (self.api.stream_query)(self.stream) } {
            0 => Ok(true),
            HIP_ERROR_NOT_READY => Ok(false),
            code => self.check("hipStreamQuery", code).map(|_| false),
        }
    }
    unsafe fn alloc_raw(&self, bytes: usize) -> Result<u64> {
        self.make_current()?;
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: a live out-pointer; the device is selected.
        self.check("hipMalloc", unsafe { (self.api.malloc)(&mut ptr, bytes) })?;
        Ok(ptr as u64)
    }
    unsafe fn free_raw(&self, address: u64) {
        if self.make_current().is_ok() {
            // SAFETY: the caller's promise: an address of `alloc_raw`, freed once.
            let code = unsafe { (self.api.free)(address as *mut c_void) };
            if let Err(e) = self.check("hipFree", code) {
                tracing::warn!("{e}");
            }
        }
    }
    unsafe fn upload_raw(&self, address: u64, src: &[u8]) -> Result<()> {
        self.make_current()?;
        // SAFETY: the caller's promise: `src.len()` bytes of a live allocation, idle.
        self.check("hipMemcpy", unsafe {
            (self.api.memcpy)(
                address as *mut c_void,
                src.as_ptr().cast(),
                src.len(),
                HIP_MEMCPY_HOST_TO_DEVICE,
            )
        })
    }
    unsafe fn download_raw(&self, address: u64, dst: &mut [u8]) -> Result<()> {
        self.make_current()?;
        // SAFETY: as in `upload_raw`, into `dst`'s `dst.len()` bytes.
        self.check("hipMemcpy", unsafe {
            (self.api.memcpy)(
                dst.as_mut_ptr().cast(),
                address as *const c_void,
                dst.len(),
                HIP_MEMCPY_DEVICE_TO_HOST,
            )
        })
    }
}

/// The ACL runtime entry points a staging calls.
struct AclApi {
    set_device: AclrtSetDevice,
    synchronize_with_timeout: AclrtSynchronizeStreamWithTimeout,
    malloc: AclrtMalloc,
    free: AclrtFree,
    memcpy: AclrtMemcpy,
}

/// An Ascend device and a stream on it, through ACL (libascendcl, loaded at run time; the
/// Ascend backend loads its own copy, and the loader shares one). Untested: no NPU where this
/// was written — the HCCL tests run on [`HostStaging`].
pub struct AclStaging {
    api: AclApi,
    device: i32,
    stream: AclStream,
    _library: Library,
}

// SAFETY: the stream is a runtime handle valid in any thread; every call selects the device
// on the calling thread first.
unsafe impl Send for AclStaging {}
// SAFETY: as above; ACL's runtime calls are thread-safe.
unsafe impl Sync for AclStaging {}

impl AclStaging {
    /// Device `device` and a new stream on it; the error names every libascendcl path tried.
    pub fn open(device: usize) -> Result<AclStaging> {
        let candidates = ascendcl_candidates();
        let names: Vec<&str> = candidates.iter().map(String::as_str).collect();
        AclStaging::open_from(device, &names)
    }

    /// [`open`](AclStaging::open) from the first of `names` that opens.
    pub fn open_from(device: usize, names: &[&str]) -> Result<AclStaging> {
        let (lib, path) = open_first("ascend", names)?;
        let unavailable = |reason: String| Error::Unavailable {
            backend: "ascend".into(),
            reason: format!("{path}: {reason}"),
        };
        // SAFETY: the prototypes are acl/acl_rt.h's (see `sys`); the pointers are kept beside
        // the library.
        let (init, create, api) = unsafe {
            (
                symbol::<AclInit>(&lib, "aclInit").map_err(unavailable)?,
                symbol::<AclrtCreateStream>(&lib, "aclrtCreateStream").map_err(unavailable)?,
                AclApi {
                    set_device: symbol(&lib, "aclrtSetDevice").map_err(unavailable)?,
                    synchronize_with_timeout: symbol(&lib, "aclrtSynchronizeStreamWithTimeout")
                        .map_err(unavailable)?,
                    malloc: symbol(&lib, "aclrtMalloc").map_err(unavailable)?,
                    free: symbol(&lib, "aclrtFree").map_err(unavailable)?,
                    memcpy: symbol(&lib, "aclrtMemcpy").map_err(unavailable)?,
                },
            )
        };
        let device =
            i32::try_from(device).map_err(|_| Error::invalid(format!("Ascend device {device}")))?;
        // ACL needs aclInit once per process before any device call; the Ascend backend
        // usually ran it already, which ACL reports as ACL_ERROR_REPEAT_INITIALIZE.
        // SAFETY: a null configuration path is documented as "no configuration file".
        match unsafe { init(std::ptr::null()) } {
            0 | ACL_ERROR_REPEAT_INITIALIZE => {}
            code => {
                return Err(unavailable(format!("aclInit failed with aclError {code}")));
            }
        }
        let mut staging = AclStaging {
            api,
            device,
            stream: std::ptr::null_mut(),
            _library: lib,
        };
        staging.make_current()?;
        let mut stream = std::ptr::null_mut();
        // SAFETY: a live out-pointer; the device is selected.
        staging.check("aclrtCreateStream", unsafe { create(&mut stream) })?;
        staging.stream = stream;
        Ok(staging)
    }

    fn check(&self, call: &str, code: AclError) -> Result<()> {
        if code == 0 {
            return Ok(());
        }
        Err(Error::Backend {
            backend: "ascend".into(),
            message: format!("device {}: {call} failed with aclError {code}", self.device),
        })
    }
}

impl DeviceStaging for AclStaging {
    fn describe(&self) -> String {
        format!("ascend device {}", self.device)
    }
    fn make_current(&self) -> Result<()> {
        // SAFETY: no pointer involved.
        self.check("aclrtSetDevice", unsafe {
            (self.api.set_device)(self.device)
        })
    }
    fn stream(&self) -> *mut c_void {
        self.stream
    }
    fn stream_done(&self) -> Result<bool> {
        self.make_current()?;
        // ACL's public headers have no non-blocking stream query in every CANN release, so a
        // poll is a synchronisation bounded by ACL_POLL_MS; the communicator's deadline runs
        // between polls.
        // SAFETY: the stream was created in `open` and is never destroyed.
        match unsafe { (self.api.synchronize_with_timeout)(self.stream, ACL_POLL_MS) } {
            0 => Ok(true),
            ACL_ERROR_RT_STREAM_SYNC_TIMEOUT => Ok(false),
            code => self
                .check("aclrtSynchronizeStreamWithTimeout", code)
                .map(|_| false),
        }
    }
    unsafe fn alloc_raw(&self, bytes: usize) -> Result<u64> {
        self.make_current()?;
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: a live out-pointer; the device is selected.
        self.check("aclrtMalloc", unsafe {
            (self.api.malloc)(&mut ptr, bytes, ACL_MEM_MALLOC_HUGE_FIRST)
        })?;
        Ok(ptr as u64)
    }
    unsafe fn free_raw(&self, address: u64) {
        if self.make_current().is_ok() {
            // SAFETY: the caller's promise: an address of `alloc_raw`, freed once.
            let code = unsafe { (self.api.free)(address as *mut c_void) };
            if let Err(e) = self.check("aclrtFree", code) {
                tracing::warn!("{e}");
            }
        }
    }
    unsafe fn upload_raw(&self, address: u64, src: &[u8]) -> Result<()> {
        self.make_current()?;
        // SAFETY: the caller's promise: `src.len()` bytes of a live allocation, idle.
        self.check("aclrtMemcpy", unsafe {
            (self.api.memcpy)(
                address as *mut c_void,
                src.len(),
                src.as_ptr().cast(),
                src.len(),
                ACL_MEMCPY_HOST_TO_DEVICE,
            )
        })
    }
    unsafe fn download_raw(&self, address: u64, dst: &mut [u8]) -> Result<()> {
        self.make_current()?;
        // SAFETY: as in `upload_raw`, into `dst`'s `dst.len()` bytes.
        self.check("aclrtMemcpy", unsafe {
            (self.api.memcpy)(
                dst.as_mut_ptr().cast(),
                dst.len(),
                address as *const c_void,
                dst.len(),
                ACL_MEMCPY_DEVICE_TO_HOST,
            )
        })
    }
}
