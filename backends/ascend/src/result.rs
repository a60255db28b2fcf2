//! One safe function per ACL call: every call returns `Result` with the `aclError` code and
//! `aclGetRecentErrMsg`'s text, and the owning types (device memory, stream, loaded binary)
//! free their handle on drop. All FFI calls of the crate are here.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libloading::Library;

use crate::source::ParamKind;
use crate::sys::{self, *};

/// A failed ACL call: which, its code and the runtime's message.
#[derive(Debug, Clone)]
pub struct CallError {
    /// The entry point (`aclrtMalloc`).
    pub call: &'static str,
    /// The `aclError` it returned.
    pub code: AclError,
    /// `aclGetRecentErrMsg()`'s text, empty when it had none.
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed with aclError {}", self.call, self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message.trim())?;
        }
        Ok(())
    }
}

/// The ACL entry points this crate calls, copied out of the loaded library.
struct Api {
    init: AclInit,
    recent_err_msg: AclGetRecentErrMsg,
    get_version: Option<AclrtGetVersion>,
    get_device_count: AclrtGetDeviceCount,
    set_device: AclrtSetDevice,
    get_soc_name: AclrtGetSocName,
    get_mem_info: AclrtGetMemInfo,
    malloc: AclrtMalloc,
    free: AclrtFree,
    memcpy: AclrtMemcpy,
    create_stream: AclrtCreateStream,
    synchronize_stream: AclrtSynchronizeStream,
    destroy_stream: AclrtDestroyStream,
    binary_load_from_data: AclrtBinaryLoadFromData,
    binary_get_function: AclrtBinaryGetFunction,
    binary_unload: AclrtBinaryUnLoad,
    kernel_args_init: AclrtKernelArgsInit,
    kernel_args_append: AclrtKernelArgsAppend,
    kernel_args_finalize: AclrtKernelArgsFinalize,
    launch_kernel_with_config: AclrtLaunchKernelWithConfig,
}

/// The aclrtc entry points.
struct RtcApi {
    create_prog: AclrtcCreateProg,
    compile_prog: AclrtcCompileProg,
    get_bin_data_size: AclrtcGetBinDataSize,
    get_bin_data: AclrtcGetBinData,
    get_compile_log_size: AclrtcGetCompileLogSize,
    get_compile_log: AclrtcGetCompileLog,
    destroy_prog: AclrtcDestroyProg,
}

/// The loaded ACL runtime (and aclrtc, when found).
pub struct Acl {
    /// The file libascendcl was loaded from (or the bare name the loader resolved).
    pub path: PathBuf,
    api: Api,
    rtc: Result<RtcApi, String>,
    _libraries: Vec<Library>,
}

/// Loads every symbol of [`Api`] from `lib`.
fn load_api(lib: &Library) -> Result<Api, String> {
    // SAFETY: each type is the prototype of its symbol, copied from the header named in
    // `sys`; the pointers are stored in `Acl` beside the library, which outlives them.
    unsafe {
        Ok(Api {
            init: symbol(lib, "aclInit")?,
            recent_err_msg: symbol(lib, "aclGetRecentErrMsg")?,
            get_version: symbol(lib, "aclrtGetVersion").ok(),
            get_device_count: symbol(lib, "aclrtGetDeviceCount")?,
            set_device: symbol(lib, "aclrtSetDevice")?,
            get_soc_name: symbol(lib, "aclrtGetSocName")?,
            get_mem_info: symbol(lib, "aclrtGetMemInfo")?,
            malloc: symbol(lib, "aclrtMalloc")?,
            free: symbol(lib, "aclrtFree")?,
            memcpy: symbol(lib, "aclrtMemcpy")?,
            create_stream: symbol(lib, "aclrtCreateStream")?,
            synchronize_stream: symbol(lib, "aclrtSynchronizeStream")?,
            destroy_stream: symbol(lib, "aclrtDestroyStream")?,
            binary_load_from_data: symbol(lib, "aclrtBinaryLoadFromData")?,
            binary_get_function: symbol(lib, "aclrtBinaryGetFunction")?,
            binary_unload: symbol(lib, "aclrtBinaryUnLoad")?,
            kernel_args_init: symbol(lib, "aclrtKernelArgsInit")?,
            kernel_args_append: symbol(lib, "aclrtKernelArgsAppend")?,
            kernel_args_finalize: symbol(lib, "aclrtKernelArgsFinalize")?,
            launch_kernel_with_config: symbol(lib, "aclrtLaunchKernelWithConfig")?,
        })
    }
}

/// Loads every symbol of [`RtcApi`] from `lib`.
fn load_rtc(lib: &Library) -> Result<RtcApi, String> {
    // SAFETY: as in `load_api`.
    unsafe {
        Ok(RtcApi {
            create_prog: symbol(lib, "aclrtcCreateProg")?,
            compile_prog: symbol(lib, "aclrtcCompileProg")?,
            get_bin_data_size: symbol(lib, "aclrtcGetBinDataSize")?,
            get_bin_data: symbol(lib, "aclrtcGetBinData")?,
            get_compile_log_size: symbol(lib, "aclrtcGetCompileLogSize")?,
            get_compile_log: symbol(lib, "aclrtcGetCompileLog")?,
            destroy_prog: symbol(lib, "aclrtcDestroyProg")?,
        })
    }
}

impl Acl {
    /// Loads libascendcl from the search path (`sys::search_path`): the first candidate file
    /// that exists is the one used, and a file that exists but does not load (or lacks a
    /// symbol) is reported by its path; with none present, the loader's own search. The
    /// error names every place looked in.
    pub fn load() -> Result<Acl, String> {
        let candidates = sys::search_path(ACL_LIBRARY);
        for candidate in candidates.iter().flatten() {
            if candidate.exists() {
                return Acl::load_from(candidate);
            }
        }
        let looked: Vec<String> = candidates
            .iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
        Acl::load_from(Path::new(ACL_LIBRARY)).map_err(|e| {
            format!(
                "{ACL_LIBRARY} not found: looked in {} (set {} to a CANN installation), then \
                 the loader's search path ({e})",
                looked.join(", "),
                HOME_ENVS.join(" or ")
            )
        })
    }

    /// Loads the ACL runtime from exactly `path`, and aclrtc from the same library or from
    /// libacl_rtc beside it (then the loader's path).
    pub fn load_from(path: &Path) -> Result<Acl, String> {
        let shown = path.display();
        let lib = sys::open(path).map_err(|e| format!("{shown} does not load: {e}"))?;
        let api = load_api(&lib).map_err(|e| format!("{shown} {e}"))?;
        let mut libraries = vec![lib];
        let rtc = match load_rtc(&libraries[0]) {
            Ok(rtc) => Ok(rtc),
            Err(in_acl) => {
                let beside = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|dir| dir.join(ACLRTC_LIBRARY))
                    .unwrap_or_else(|| PathBuf::from(ACLRTC_LIBRARY));
                match sys::open(&beside) {
                    Ok(lib) => {
                        let rtc = load_rtc(&lib).map_err(|e| format!("{}: {e}", beside.display()));
                        libraries.push(lib);
                        rtc
                    }
                    Err(e) => Err(format!(
                        "aclrtc not found: {shown} {in_acl}, and {} does not load ({e})",
                        beside.display()
                    )),
                }
            }
        };
        Ok(Acl {
            path: path.to_path_buf(),
            api,
            rtc,
            _libraries: libraries,
        })
    }

    /// Turns an `aclError` into `Ok` or a [`CallError`] with the runtime's recent message.
    fn check(&self, call: &'static str, code: AclError) -> Result<(), CallError> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: aclGetRecentErrMsg takes nothing and returns null or a NUL-terminated string
        // owned by the runtime, copied here before any other ACL call.
        let message = unsafe { c_text((self.api.recent_err_msg)()) };
        Err(CallError {
            call,
            code,
            message,
        })
    }

    /// `aclGetRecentErrMsg()`: this thread's last error text from any CANN library, empty
    /// when there is none.
    pub fn recent_error(&self) -> String {
        // SAFETY: as in `check`.
        unsafe { c_text((self.api.recent_err_msg)()) }
    }

    /// `aclInit(NULL)`.
    pub fn init(&self) -> Result<(), CallError> {
        // SAFETY: a null configuration path is documented as "no configuration".
        let code = unsafe { (self.api.init)(std::ptr::null()) };
        self.check("aclInit", code)
    }

    /// `aclrtGetVersion`, when the library exports it: `major.minor.patch`.
    pub fn version(&self) -> Option<String> {
        let f = self.api.get_version?;
        let (mut major, mut minor, mut patch) = (0i32, 0i32, 0i32);
        // SAFETY: three valid out-pointers to i32.
        let code = unsafe { f(&mut major, &mut minor, &mut patch) };
        self.check("aclrtGetVersion", code).ok()?;
        Some(format!("{major}.{minor}.{patch}"))
    }

    /// `aclrtGetDeviceCount`.
    pub fn device_count(&self) -> Result<u32, CallError> {
        let mut count = 0u32;
        // SAFETY: a valid out-pointer.
        let code = unsafe { (self.api.get_device_count)(&mut count) };
        self.check("aclrtGetDeviceCount", code)?;
        Ok(count)
    }

    /// `aclrtSetDevice`: makes `device` current on this thread.
    pub fn set_device(&self, device: i32) -> Result<(), CallError> {
        // SAFETY: plain value argument.
        let code = unsafe { (self.api.set_device)(device) };
        self.check("aclrtSetDevice", code)
    }

    /// `aclrtGetSocName`: the current device's SoC (`Ascend910B3`).
    pub fn soc_name(&self) -> Result<String, CallError> {
        // SAFETY: returns null or a NUL-terminated string owned by the runtime, copied now.
        let name = unsafe { c_text((self.api.get_soc_name)()) };
        if name.is_empty() {
            self.check("aclrtGetSocName", -1)?;
        }
        Ok(name)
    }

    /// `aclrtGetMemInfo(ACL_HBM_MEM)`: `(free, total)` bytes of the current device.
    pub fn mem_info(&self) -> Result<(usize, usize), CallError> {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: two valid out-pointers.
        let code = unsafe { (self.api.get_mem_info)(ACL_HBM_MEM, &mut free, &mut total) };
        self.check("aclrtGetMemInfo", code)?;
        Ok((free, total))
    }

    /// Whether aclrtc was found, or why not.
    pub fn rtc_status(&self) -> Result<(), String> {
        self.rtc.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// Compiles `source` (named `name` in messages) with aclrtc and `options`; returns the
    /// device binary, or the compile log as the error.
    pub fn compile(&self, source: &str, name: &str, options: &[String]) -> Result<Vec<u8>, String> {
        let rtc = self.rtc.as_ref().map_err(Clone::clone)?;
        let c_source = CString::new(source).map_err(|_| format!("{name}: source holds a NUL"))?;
        let c_name = CString::new(name).map_err(|_| format!("{name}: name holds a NUL"))?;
        let c_options = options
            .iter()
            .map(|o| CString::new(o.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("{name}: an option holds a NUL"))?;
        let option_ptrs: Vec<*const c_char> = c_options.iter().map(|o| o.as_ptr()).collect();
        let mut prog: AclrtcProg = std::ptr::null_mut();
        // SAFETY: valid out-pointer, NUL-terminated source and name, no headers.
        let code = unsafe {
            (rtc.create_prog)(
                &mut prog,
                c_source.as_ptr(),
                c_name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        self.check("aclrtcCreateProg", code)
            .map_err(|e| e.to_string())?;
        let outcome = (|| {
            // SAFETY: `prog` was created above; `option_ptrs` holds `len` valid C strings.
            let code =
                unsafe { (rtc.compile_prog)(prog, option_ptrs.len() as i32, option_ptrs.as_ptr()) };
            if let Err(e) = self.check("aclrtcCompileProg", code) {
                return Err(format!("{e}\n{}", self.compile_log(rtc, prog)));
            }
            let mut size = 0usize;
            // SAFETY: valid program and out-pointer.
            let code = unsafe { (rtc.get_bin_data_size)(prog, &mut size) };
            self.check("aclrtcGetBinDataSize", code)
                .map_err(|e| e.to_string())?;
            let mut binary = vec![0u8; size];
            // SAFETY: `binary` holds the `size` bytes aclrtcGetBinDataSize asked for.
            let code = unsafe { (rtc.get_bin_data)(prog, binary.as_mut_ptr().cast()) };
            self.check("aclrtcGetBinData", code)
                .map_err(|e| e.to_string())?;
            Ok(binary)
        })();
        // SAFETY: `prog` is a live program, destroyed once.
        let code = unsafe { (rtc.destroy_prog)(&mut prog) };
        if let Err(e) = self.check("aclrtcDestroyProg", code) {
            tracing::warn!("{name}: {e}");
        }
        outcome
    }

    /// The compile log of `prog` (empty when it cannot be read).
    fn compile_log(&self, rtc: &RtcApi, prog: AclrtcProg) -> String {
        let mut size = 0usize;
        // SAFETY: valid program and out-pointer.
        let code = unsafe { (rtc.get_compile_log_size)(prog, &mut size) };
        if self.check("aclrtcGetCompileLogSize", code).is_err() || size == 0 {
            return String::new();
        }
        let mut log = vec![0u8; size + 1];
        // SAFETY: `log` holds the size asked for plus a NUL.
        let code = unsafe { (rtc.get_compile_log)(prog, log.as_mut_ptr().cast()) };
        if self.check("aclrtcGetCompileLog", code).is_err() {
            return String::new();
        }
        String::from_utf8_lossy(&log[..size])
            .trim_end_matches('\0')
            .to_string()
    }
}

/// Copies a C string the runtime owns; empty for null.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string valid for the call.
unsafe fn c_text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: forwarded to the caller.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// A stream of one device: the in-order queue of the backend. Destroyed on drop.
pub struct Stream {
    acl: Arc<Acl>,
    raw: AclStream,
}

// SAFETY: an aclrtStream is a handle the runtime lets any thread use once its device is
// current; the backend makes the device current before each call.
unsafe impl Send for Stream {}
// SAFETY: as for Send; calls on one stream are ordered by the runtime.
unsafe impl Sync for Stream {}

impl Stream {
    /// `aclrtCreateStream` on the current device.
    pub fn create(acl: &Arc<Acl>) -> Result<Stream, CallError> {
        let mut raw: AclStream = std::ptr::null_mut();
        // SAFETY: a valid out-pointer.
        let code = unsafe { (acl.api.create_stream)(&mut raw) };
        acl.check("aclrtCreateStream", code)?;
        Ok(Stream {
            acl: acl.clone(),
            raw,
        })
    }

    /// The raw handle, for calls that enqueue on this stream (aclnn's second phase).
    pub fn raw(&self) -> AclStream {
        self.raw
    }

    /// `aclrtSynchronizeStream`: waits for everything enqueued.
    pub fn synchronize(&self) -> Result<(), CallError> {
        // SAFETY: a live stream.
        let code = unsafe { (self.acl.api.synchronize_stream)(self.raw) };
        self.acl.check("aclrtSynchronizeStream", code)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // SAFETY: a live stream, destroyed once.
        let code = unsafe { (self.acl.api.destroy_stream)(self.raw) };
        if let Err(e) = self.acl.check("aclrtDestroyStream", code) {
            tracing::warn!("{e}");
        }
    }
}

/// Device memory; waits for the stream, then frees on drop (so scratch dropped right after
/// its launches were enqueued outlives them).
pub struct DeviceMem {
    stream: Arc<Stream>,
    ptr: *mut c_void,
    len: usize,
}

// SAFETY: a device address is plain data to the host; the runtime accepts it from any thread.
unsafe impl Send for DeviceMem {}
// SAFETY: as for Send; the host never dereferences it.
unsafe impl Sync for DeviceMem {}

impl DeviceMem {
    /// `aclrtMalloc(len, ACL_MEM_MALLOC_HUGE_FIRST)` on the current device.
    pub fn alloc(stream: &Arc<Stream>, len: usize) -> Result<DeviceMem, CallError> {
        let acl = &stream.acl;
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: a valid out-pointer and a non-zero size (the caller rounds up).
        let code = unsafe { (acl.api.malloc)(&mut ptr, len, ACL_MEM_MALLOC_HUGE_FIRST) };
        acl.check("aclrtMalloc", code)?;
        Ok(DeviceMem {
            stream: stream.clone(),
            ptr,
            len,
        })
    }

    /// The device address as a kernel argument takes it.
    pub fn address(&self) -> u64 {
        self.ptr as u64
    }

    /// `aclrtMemcpy(HOST_TO_DEVICE)` of `src` to byte `offset` (range checked by the caller).
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<(), CallError> {
        let acl = &self.stream.acl;
        // SAFETY: `offset + src.len() <= len` (checked by the caller), so the destination range
        // lies inside this allocation; `src` is valid host memory of its length.
        let code = unsafe {
            (acl.api.memcpy)(
                self.ptr.cast::<u8>().add(offset).cast(),
                self.len - offset,
                src.as_ptr().cast(),
                src.len(),
                ACL_MEMCPY_HOST_TO_DEVICE,
            )
        };
        acl.check("aclrtMemcpy", code)
    }

    /// `aclrtMemcpy(DEVICE_TO_HOST)` of the bytes at `offset` into `dst`.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), CallError> {
        let acl = &self.stream.acl;
        // SAFETY: as in `write`, with `dst` writable host memory of its length.
        let code = unsafe {
            (acl.api.memcpy)(
                dst.as_mut_ptr().cast(),
                dst.len(),
                self.ptr.cast::<u8>().add(offset).cast_const().cast(),
                dst.len(),
                ACL_MEMCPY_DEVICE_TO_HOST,
            )
        };
        acl.check("aclrtMemcpy", code)
    }
}

impl Drop for DeviceMem {
    fn drop(&mut self) {
        if let Err(e) = self.stream.synchronize() {
            tracing::warn!("before freeing device memory: {e}");
        }
        let acl = &self.stream.acl;
        // SAFETY: an allocation of this crate, freed once, after the stream has drained.
        let code = unsafe { (acl.api.free)(self.ptr) };
        if let Err(e) = acl.check("aclrtFree", code) {
            tracing::warn!("{e}");
        }
    }
}

/// A loaded device binary and the functions looked up in it; unloaded on drop.
pub struct Binary {
    acl: Arc<Acl>,
    raw: AclBinHandle,
    functions: Vec<(String, AclFuncHandle)>,
}

// SAFETY: binary and function handles are runtime-owned tokens usable from any thread with
// the device current.
unsafe impl Send for Binary {}
// SAFETY: as for Send; launching does not mutate the handles.
unsafe impl Sync for Binary {}

impl Binary {
    /// `aclrtBinaryLoadFromData`, then `aclrtBinaryGetFunction` for each of `names`.
    pub fn load(acl: &Arc<Acl>, data: &[u8], names: &[&str]) -> Result<Binary, CallError> {
        let mut raw: AclBinHandle = std::ptr::null_mut();
        // SAFETY: `data` is valid for its length; null options; a valid out-pointer.
        let code = unsafe {
            (acl.api.binary_load_from_data)(
                data.as_ptr().cast(),
                data.len(),
                std::ptr::null(),
                &mut raw,
            )
        };
        acl.check("aclrtBinaryLoadFromData", code)?;
        let mut binary = Binary {
            acl: acl.clone(),
            raw,
            functions: Vec::new(),
        };
        for name in names {
            let c_name = CString::new(*name).map_err(|_| CallError {
                call: "aclrtBinaryGetFunction",
                code: -1,
                message: format!("kernel name {name:?} holds a NUL"),
            })?;
            let mut f: AclFuncHandle = std::ptr::null_mut();
            // SAFETY: a live binary, a NUL-terminated name, a valid out-pointer.
            let code = unsafe { (acl.api.binary_get_function)(raw, c_name.as_ptr(), &mut f) };
            acl.check("aclrtBinaryGetFunction", code).map_err(|mut e| {
                e.message = format!("kernel {name}: {}", e.message);
                e
            })?;
            binary.functions.push((name.to_string(), f));
        }
        Ok(binary)
    }

    /// Launches kernel `name` over `block_dim` blocks on `stream`, with `args` appended one by
    /// one (`aclrtKernelArgsInit` / `Append` / `Finalize`, `aclrtLaunchKernelWithConfig`).
    pub fn launch(
        &self,
        stream: &Stream,
        name: &str,
        block_dim: u32,
        args: &[(ParamKind, u64)],
    ) -> Result<(), CallError> {
        let f = self
            .functions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| CallError {
                call: "aclrtBinaryGetFunction",
                code: -1,
                message: format!("no kernel {name} was looked up in this binary"),
            })?;
        let api = &self.acl.api;
        let mut handle: AclArgsHandle = std::ptr::null_mut();
        // SAFETY: a function of this live binary and a valid out-pointer.
        let code = unsafe { (api.kernel_args_init)(f, &mut handle) };
        self.acl.check("aclrtKernelArgsInit", code)?;
        for &(kind, value) in args {
            let mut bytes = [0u8; 8];
            match kind {
                ParamKind::Pointer | ParamKind::U64 => bytes = value.to_ne_bytes(),
                ParamKind::U32 | ParamKind::F32 => {
                    bytes[..4].copy_from_slice(&(value as u32).to_ne_bytes())
                }
            }
            let mut param: AclParamHandle = std::ptr::null_mut();
            // SAFETY: a live argument list; `bytes` holds at least `kind.size()` bytes, which
            // the runtime copies before returning.
            let code = unsafe {
                (api.kernel_args_append)(handle, bytes.as_mut_ptr().cast(), kind.size(), &mut param)
            };
            self.acl.check("aclrtKernelArgsAppend", code)?;
        }
        // SAFETY: a live argument list, finalized once.
        let code = unsafe { (api.kernel_args_finalize)(handle) };
        self.acl.check("aclrtKernelArgsFinalize", code)?;
        // SAFETY: function, stream and finalized argument list are live; null config and
        // reserve are documented as "none".
        let code = unsafe {
            (api.launch_kernel_with_config)(
                f,
                block_dim,
                stream.raw,
                std::ptr::null_mut(),
                handle,
                std::ptr::null_mut(),
            )
        };
        self.acl.check("aclrtLaunchKernelWithConfig", code)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        // SAFETY: a live binary, unloaded once; its functions are dropped with it.
        let code = unsafe { (self.acl.api.binary_unload)(self.raw) };
        if let Err(e) = self.acl.check("aclrtBinaryUnLoad", code) {
            tracing::warn!("{e}");
        }
    }
}
