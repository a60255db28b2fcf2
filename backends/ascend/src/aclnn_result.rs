//! One safe function per aclnn call: every call returns `Result` with the `aclnnStatus` and
//! `aclGetRecentErrMsg`'s text, and the descriptors (`aclTensor`, `aclTensorList`,
//! `aclIntArray`) are owned values destroyed on drop. Each operator runs in CANN's two
//! phases: `…GetWorkspaceSize` checks the descriptors and returns an executor and the
//! workspace it needs; the workspace is device memory of the backend's stream (freed after
//! the stream drains); the second phase enqueues the operator on that stream.
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libloading::Library;

use crate::aclnn_sys::*;
use crate::result::{Acl, DeviceMem, Stream};
use crate::sys::{self, symbol};

/// A failed aclnn call: which, its status and the runtime's message.
#[derive(Debug, Clone)]
pub struct NnError {
    /// The entry point (`aclnnMatmulGetWorkspaceSize`).
    pub call: &'static str,
    /// The `aclnnStatus` it returned (-1 for a null descriptor).
    pub status: AclnnStatus,
    /// `aclGetRecentErrMsg()`'s text, empty when it had none.
    pub message: String,
}

impl std::fmt::Display for NnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed with aclnnStatus {}", self.call, self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message.trim())?;
        }
        Ok(())
    }
}

/// The aclnn entry points this crate calls.
struct NnApi {
    create_tensor: AclCreateTensor,
    destroy_tensor: AclDestroyTensor,
    create_int_array: AclCreateIntArray,
    destroy_int_array: AclDestroyIntArray,
    create_tensor_list: AclCreateTensorList,
    destroy_tensor_list: AclDestroyTensorList,
    matmul_workspace: AclnnMatmulGetWorkspaceSize,
    matmul: AclnnRun,
    grouped_matmul_workspace: AclnnGroupedMatmulV2GetWorkspaceSize,
    grouped_matmul: AclnnRun,
}

/// The loaded operator library: libnnopbase's descriptors and libopapi's operators.
pub struct Aclnn {
    acl: Arc<Acl>,
    /// Where libopapi and libnnopbase were loaded from, for messages.
    pub paths: (PathBuf, PathBuf),
    api: NnApi,
    _libraries: [Library; 2],
}

/// Where `file` is: the first existing candidate of the ACL search path
/// (`$ASCEND_HOME_PATH/lib64`, …, the default toolkit), else the bare name for the loader.
fn find(file: &str) -> PathBuf {
    sys::search_path(file)
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(file))
}

impl Aclnn {
    /// Loads libopapi and libnnopbase from the ACL search path. The error names the file and
    /// what is missing; exact mode does not need either library.
    pub fn load(acl: Arc<Acl>) -> Result<Aclnn, String> {
        Aclnn::load_from(acl, &find(OPAPI_LIBRARY), &find(NNOPBASE_LIBRARY))
    }

    /// Loads the operators from exactly `opapi` and the descriptors from exactly `nnopbase`
    /// (the tests' stand-in; may be the same file).
    pub fn load_from(acl: Arc<Acl>, opapi: &Path, nnopbase: &Path) -> Result<Aclnn, String> {
        let open =
            |p: &Path| sys::open(p).map_err(|e| format!("{} does not load: {e}", p.display()));
        let base = open(nnopbase)?;
        let ops = open(opapi)?;
        let (b, o) = (nnopbase.display(), opapi.display());
        // SAFETY: each type is the prototype of its symbol, copied from the header named in
        // `aclnn_sys`; the pointers are stored beside both libraries, which outlive them.
        let api = unsafe {
            NnApi {
                create_tensor: symbol(&base, "aclCreateTensor").map_err(|e| format!("{b} {e}"))?,
                destroy_tensor: symbol(&base, "aclDestroyTensor")
                    .map_err(|e| format!("{b} {e}"))?,
                create_int_array: symbol(&base, "aclCreateIntArray")
                    .map_err(|e| format!("{b} {e}"))?,
                destroy_int_array: symbol(&base, "aclDestroyIntArray")
                    .map_err(|e| format!("{b} {e}"))?,
                create_tensor_list: symbol(&base, "aclCreateTensorList")
                    .map_err(|e| format!("{b} {e}"))?,
                destroy_tensor_list: symbol(&base, "aclDestroyTensorList")
                    .map_err(|e| format!("{b} {e}"))?,
                matmul_workspace: symbol(&ops, "aclnnMatmulGetWorkspaceSize")
                    .map_err(|e| format!("{o} {e}"))?,
                matmul: symbol(&ops, "aclnnMatmul").map_err(|e| format!("{o} {e}"))?,
                grouped_matmul_workspace: symbol(&ops, "aclnnGroupedMatmulV2GetWorkspaceSize")
                    .map_err(|e| format!("{o} {e}"))?,
                grouped_matmul: symbol(&ops, "aclnnGroupedMatmulV2")
                    .map_err(|e| format!("{o} {e}"))?,
            }
        };
        Ok(Aclnn {
            acl,
            paths: (opapi.to_path_buf(), nnopbase.to_path_buf()),
            api,
            _libraries: [ops, base],
        })
    }

    fn check(&self, call: &'static str, status: AclnnStatus) -> Result<(), NnError> {
        if status == 0 {
            return Ok(());
        }
        Err(NnError {
            call,
            status,
            message: self.acl.recent_error(),
        })
    }

    /// A null descriptor from a `aclCreate…` call, as an error.
    fn null(&self, call: &'static str) -> NnError {
        NnError {
            call,
            status: -1,
            message: match self.acl.recent_error() {
                m if m.is_empty() => "returned null".into(),
                m => m,
            },
        }
    }

    /// Runs the second phase `run` of an operator whose first phase returned `executor` and
    /// `workspace` bytes: allocates the workspace on `stream` and enqueues the operator.
    fn enqueue(
        &self,
        call: &'static str,
        run: AclnnRun,
        stream: &Arc<Stream>,
        executor: AclOpExecutor,
        workspace: u64,
    ) -> Result<(), NnError> {
        let memory = match workspace {
            0 => None,
            n => Some(DeviceMem::alloc(stream, n as usize).map_err(|e| NnError {
                call,
                status: e.code,
                message: format!("workspace of {n} bytes: {e}"),
            })?),
        };
        let address = memory
            .as_ref()
            .map_or(std::ptr::null_mut(), |m| m.address() as *mut c_void);
        // SAFETY: `executor` came from the first phase and is consumed once here; the
        // workspace holds the bytes it asked for and is freed only after the stream drains
        // (`DeviceMem`'s drop); the stream is live.
        let status = unsafe { run(address, workspace, executor, stream.raw()) };
        self.check(call, status)
    }

    /// `out = x @ mat2` (aclnnMatmul, `KEEP_DTYPE`) on `stream`.
    pub fn matmul(
        &self,
        stream: &Arc<Stream>,
        x: &Tensor,
        mat2: &Tensor,
        out: &Tensor,
    ) -> Result<(), NnError> {
        let (mut workspace, mut executor) = (0u64, std::ptr::null_mut());
        // SAFETY: three live descriptors of this library and two valid out-pointers.
        let status = unsafe {
            (self.api.matmul_workspace)(
                x.raw,
                mat2.raw,
                out.raw,
                CUBE_MATH_KEEP_DTYPE,
                &mut workspace,
                &mut executor,
            )
        };
        self.check("aclnnMatmulGetWorkspaceSize", status)?;
        self.enqueue("aclnnMatmul", self.api.matmul, stream, executor, workspace)
    }

    /// Grouped matmul, groups along M (aclnnGroupedMatmulV2, `groupType` 0, one y tensor):
    /// rows `ends[g-1]..ends[g]` of x times `weight[g]` into the same rows of y.
    pub fn grouped_matmul(
        &self,
        stream: &Arc<Stream>,
        x: &TensorList,
        weight: &TensorList,
        ends: &IntArray,
        y: &TensorList,
    ) -> Result<(), NnError> {
        let none = std::ptr::null_mut();
        let (mut workspace, mut executor) = (0u64, std::ptr::null_mut());
        // SAFETY: live descriptors of this library, null for every optional list (no bias,
        // no quantization), two valid out-pointers.
        let status = unsafe {
            (self.api.grouped_matmul_workspace)(
                x.raw,
                weight.raw,
                none,
                none,
                none,
                none,
                none,
                ends.raw,
                SPLIT_ITEM_SINGLE_Y,
                GROUP_TYPE_M,
                y.raw,
                &mut workspace,
                &mut executor,
            )
        };
        self.check("aclnnGroupedMatmulV2GetWorkspaceSize", status)?;
        self.enqueue(
            "aclnnGroupedMatmulV2",
            self.api.grouped_matmul,
            stream,
            executor,
            workspace,
        )
    }
}

/// The shape of one aclnn tensor view over device memory. Strides are in elements.
pub struct View<'a> {
    /// The view's shape.
    pub dims: &'a [i64],
    /// Elements between neighbours along each dim.
    pub strides: &'a [i64],
    /// The shape of the storage the view reads (row-major), in elements.
    pub storage: &'a [i64],
    /// `ACL_BF16`, `ACL_FLOAT`.
    pub dtype: i32,
    /// The device address of the storage's first element.
    pub address: u64,
}

/// An `aclTensor`, destroyed on drop (unless a [`TensorList`] took it).
pub struct Tensor<'a> {
    nn: &'a Aclnn,
    raw: AclTensor,
}

impl<'a> Tensor<'a> {
    /// `aclCreateTensor` of `view` in `ACL_FORMAT_ND` at element offset 0.
    pub fn new(nn: &'a Aclnn, view: &View) -> Result<Tensor<'a>, NnError> {
        if view.dims.len() != view.strides.len() {
            return Err(NnError {
                call: "aclCreateTensor",
                status: -1,
                message: format!(
                    "{} dims but {} strides",
                    view.dims.len(),
                    view.strides.len()
                ),
            });
        }
        // SAFETY: dims and strides hold `dims.len()` values, storage its own length; the
        // address is a device allocation of the backend; the library copies the arrays.
        let raw = unsafe {
            (nn.api.create_tensor)(
                view.dims.as_ptr(),
                view.dims.len() as u64,
                view.dtype,
                view.strides.as_ptr(),
                0,
                ACL_FORMAT_ND,
                view.storage.as_ptr(),
                view.storage.len() as u64,
                view.address as *mut c_void,
            )
        };
        if raw.is_null() {
            return Err(nn.null("aclCreateTensor"));
        }
        Ok(Tensor { nn, raw })
    }
}

impl Drop for Tensor<'_> {
    fn drop(&mut self) {
        // SAFETY: a live tensor of this library, destroyed once.
        let status = unsafe { (self.nn.api.destroy_tensor)(self.raw) };
        if let Err(e) = self.nn.check("aclDestroyTensor", status) {
            tracing::warn!("{e}");
        }
    }
}

/// An `aclTensorList`, which owns its tensors; destroyed (with them) on drop.
pub struct TensorList<'a> {
    nn: &'a Aclnn,
    raw: AclTensorList,
}

impl<'a> TensorList<'a> {
    /// `aclCreateTensorList` of `tensors`, which the list then owns.
    pub fn new(nn: &'a Aclnn, tensors: Vec<Tensor<'a>>) -> Result<TensorList<'a>, NnError> {
        let raws: Vec<AclTensor> = tensors.iter().map(|t| t.raw).collect();
        // SAFETY: `raws` holds `len` live tensors of this library.
        let raw = unsafe { (nn.api.create_tensor_list)(raws.as_ptr(), raws.len() as u64) };
        if raw.is_null() {
            return Err(nn.null("aclCreateTensorList"));
        }
        // aclDestroyTensorList destroys the tensors (its document: they "do not need to be
        // destroyed again"), so their owners must not.
        tensors.into_iter().for_each(std::mem::forget);
        Ok(TensorList { nn, raw })
    }
}

impl Drop for TensorList<'_> {
    fn drop(&mut self) {
        // SAFETY: a live list of this library, destroyed once with its tensors.
        let status = unsafe { (self.nn.api.destroy_tensor_list)(self.raw) };
        if let Err(e) = self.nn.check("aclDestroyTensorList", status) {
            tracing::warn!("{e}");
        }
    }
}

/// An `aclIntArray` (a host array the operator reads at its first phase); destroyed on drop.
pub struct IntArray<'a> {
    nn: &'a Aclnn,
    raw: AclIntArray,
}

impl<'a> IntArray<'a> {
    /// `aclCreateIntArray` of `values` (copied).
    pub fn new(nn: &'a Aclnn, values: &[i64]) -> Result<IntArray<'a>, NnError> {
        // SAFETY: `values` holds `len` integers, copied by the library.
        let raw = unsafe { (nn.api.create_int_array)(values.as_ptr(), values.len() as u64) };
        if raw.is_null() {
            return Err(nn.null("aclCreateIntArray"));
        }
        Ok(IntArray { nn, raw })
    }
}

impl Drop for IntArray<'_> {
    fn drop(&mut self) {
        // SAFETY: a live array of this library, destroyed once.
        let status = unsafe { (self.nn.api.destroy_int_array)(self.raw) };
        if let Err(e) = self.nn.check("aclDestroyIntArray", status) {
            tracing::warn!("{e}");
        }
    }
}
