//! Raw FFI of CANN's operator library (aclnn), opened at run time with libloading: the tensor
//! descriptors of `libnnopbase.so` and the two-phase operators of `libopapi.so`
//! (`…GetWorkspaceSize`, then the run on a stream), as llama.cpp's CANN backend calls them.
//! Each prototype is copied from the public header or operator document named beside it;
//! nothing here calls a vendor function (`aclnn_result` does, one safe function per call).
//!
//! Where each symbol lives (CANN 8.x toolkits, `<home>/lib64`): `aclCreateTensor`,
//! `aclDestroyTensor`, `aclCreateIntArray`, `aclDestroyIntArray`, `aclCreateTensorList` and
//! `aclDestroyTensorList` in `libnnopbase.so` (declared in `aclnn/acl_meta.h`);
//! `aclnnMatmul*` and `aclnnGroupedMatmulV2*` in `libopapi.so` (declared in
//! `aclnnop/aclnn_matmul.h` and `aclnnop/aclnn_grouped_matmul_v2.h`).

use std::ffi::{c_int, c_void};

/// `aclnnStatus` (aclnn/acl_meta.h: `typedef int32_t aclnnStatus`): 0 is `OK`.
pub type AclnnStatus = i32;
/// `aclTensor *` (aclnn/acl_meta.h: an opaque `struct aclTensor`).
pub type AclTensor = *mut c_void;
/// `aclTensorList *` (aclnn/acl_meta.h: an opaque `struct aclTensorList`).
pub type AclTensorList = *mut c_void;
/// `aclIntArray *` (aclnn/acl_meta.h: an opaque `struct aclIntArray`).
pub type AclIntArray = *mut c_void;
/// `aclOpExecutor *` (aclnn/acl_meta.h: an opaque `struct aclOpExecutor`), made by the first
/// phase and consumed by the second.
pub type AclOpExecutor = *mut c_void;

/// `aclDataType` (acl/acl_base.h): `ACL_BF16`.
pub const ACL_BF16: c_int = 27;
/// `aclFormat` (acl/acl_base.h): `ACL_FORMAT_ND`, a plain row-major N-d array.
pub const ACL_FORMAT_ND: c_int = 2;
/// `cubeMathType` of aclnnMatmul (operator document): `KEEP_DTYPE`, compute in the operands'
/// dtype (BF16 products, f32 accumulation); no down-conversion to HF32/FP16.
pub const CUBE_MATH_KEEP_DTYPE: i8 = 0;
/// `groupType` of aclnnGroupedMatmulV2 (operator document): `0`, groups split the M axis.
pub const GROUP_TYPE_M: i64 = 0;
/// `splitItem` of aclnnGroupedMatmulV2 (operator document): `2`, y is one tensor.
pub const SPLIT_ITEM_SINGLE_Y: i64 = 2;

/// `aclTensor *aclCreateTensor(const int64_t *viewDims, uint64_t viewDimsNum,
/// aclDataType dataType, const int64_t *stride, int64_t offset, aclFormat format,
/// const int64_t *storageDims, uint64_t storageDimsNum, void *tensorData)`
/// (aclnn/acl_meta.h); strides and offset are in elements; null on failure.
pub type AclCreateTensor = unsafe extern "C" fn(
    *const i64,
    u64,
    c_int,
    *const i64,
    i64,
    c_int,
    *const i64,
    u64,
    *mut c_void,
) -> AclTensor;
/// `aclnnStatus aclDestroyTensor(const aclTensor *tensor)` (aclnn/acl_meta.h).
pub type AclDestroyTensor = unsafe extern "C" fn(AclTensor) -> AclnnStatus;
/// `aclIntArray *aclCreateIntArray(const int64_t *value, uint64_t size)` (aclnn/acl_meta.h):
/// copies the values.
pub type AclCreateIntArray = unsafe extern "C" fn(*const i64, u64) -> AclIntArray;
/// `aclnnStatus aclDestroyIntArray(const aclIntArray *array)` (aclnn/acl_meta.h).
pub type AclDestroyIntArray = unsafe extern "C" fn(AclIntArray) -> AclnnStatus;
/// `aclTensorList *aclCreateTensorList(const aclTensor *const *value, uint64_t size)`
/// (aclnn/acl_meta.h).
pub type AclCreateTensorList = unsafe extern "C" fn(*const AclTensor, u64) -> AclTensorList;
/// `aclnnStatus aclDestroyTensorList(const aclTensorList *array)` (aclnn/acl_meta.h); its
/// document: "the aclTensor in the aclTensorList does not need to be destroyed again" — the
/// list owns its tensors.
pub type AclDestroyTensorList = unsafe extern "C" fn(AclTensorList) -> AclnnStatus;

/// `aclnnStatus aclnnMatmulGetWorkspaceSize(const aclTensor *self, const aclTensor *mat2,
/// aclTensor *out, int8_t cubeMathType, uint64_t *workspaceSize, aclOpExecutor **executor)`
/// (aclnnop/aclnn_matmul.h; operator document aclnnMatmul.md of CANN's mat_mul_v3):
/// `out = self @ mat2`, strided (non-contiguous) views accepted.
pub type AclnnMatmulGetWorkspaceSize = unsafe extern "C" fn(
    AclTensor,
    AclTensor,
    AclTensor,
    i8,
    *mut u64,
    *mut AclOpExecutor,
) -> AclnnStatus;
/// `aclnnStatus aclnnMatmul(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
/// aclrtStream stream)` (aclnnop/aclnn_matmul.h); also the shape of every second phase.
pub type AclnnRun =
    unsafe extern "C" fn(*mut c_void, u64, AclOpExecutor, *mut c_void) -> AclnnStatus;
/// `aclnnStatus aclnnGroupedMatmulV2GetWorkspaceSize(const aclTensorList *x,
/// const aclTensorList *weight, const aclTensorList *biasOptional,
/// const aclTensorList *scaleOptional, const aclTensorList *offsetOptional,
/// const aclTensorList *antiquantScaleOptional, const aclTensorList *antiquantOffsetOptional,
/// const aclIntArray *groupListOptional, int64_t splitItem, int64_t groupType,
/// const aclTensorList *y, uint64_t *workspaceSize, aclOpExecutor **executor)`
/// (aclnnop/aclnn_grouped_matmul_v2.h; operator document aclnnGroupedMatmulV2.md of CANN's
/// ops-transformer). V2 is the version whose group list is a host `aclIntArray` of
/// cumulative row ends (V3 takes a device tensor, V4 adds a group-list type and quantization
/// parameters); we build the grouping on the host, so V2 needs no extra upload.
pub type AclnnGroupedMatmulV2GetWorkspaceSize = unsafe extern "C" fn(
    AclTensorList,
    AclTensorList,
    AclTensorList,
    AclTensorList,
    AclTensorList,
    AclTensorList,
    AclTensorList,
    AclIntArray,
    i64,
    i64,
    AclTensorList,
    *mut u64,
    *mut AclOpExecutor,
) -> AclnnStatus;

/// The operator library's file name.
pub const OPAPI_LIBRARY: &str = "libopapi.so";
/// The tensor-descriptor library's file name.
pub const NNOPBASE_LIBRARY: &str = "libnnopbase.so";
