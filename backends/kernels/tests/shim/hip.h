/* Test-only stand-in for the HIP runtime headers hiprtc provides, so clang can compile the
 * HIP programs to AMDGPU LLVM IR without a ROCm installation (tests/dialects.rs). Declares
 * only what prelude/hip.h uses. Needs -fms-extensions for the property-based index structs. */
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
struct hip_thread_idx {
    __declspec(property(get = get_x)) unsigned x;
    __device__ unsigned get_x() const { return __builtin_amdgcn_workitem_id_x(); }
};
struct hip_block_idx {
    __declspec(property(get = get_x)) unsigned x;
    __device__ unsigned get_x() const { return __builtin_amdgcn_workgroup_id_x(); }
};
struct hip_block_dim {
    __declspec(property(get = get_x)) unsigned x;
    __device__ unsigned get_x() const { return 256u; }
};
extern const __device__ hip_thread_idx threadIdx;
extern const __device__ hip_block_idx blockIdx;
extern const __device__ hip_block_dim blockDim;
__device__ inline unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }
__device__ inline float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
__device__ inline float floorf(float x) { return __builtin_floorf(x); }
__device__ inline float sqrtf(float x) { return __builtin_sqrtf(x); }
__device__ unsigned atomicCAS(unsigned *p, unsigned c, unsigned v);
__device__ void __syncthreads();
