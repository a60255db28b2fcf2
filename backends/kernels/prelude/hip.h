/* Prelude for HIP through hiprtc: what the shared kernels need from the dialect.
 * Compile with -ffp-contract=off (no contraction into FMA), without -ffast-math, with
 * correctly rounded f32 division and square root (hiprtc's default) and denormals kept, so
 * f32 + - * / sqrt are correctly rounded IEEE operations on subnormals too. Nothing here
 * depends on the wavefront width (32 or 64). No vendor bf16/fp8 headers (hiprtc 5.2 has no
 * bf16 header): BF16 and FP8 are stored as u16/u8 and converted by common/convert.h. */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;

#define KERNEL extern "C" __global__ void
#define FN static __device__ inline
#define GLOBAL
#define LOCAL
#define LOCAL_ARRAY(type, name, n) __shared__ type name[n]
#define GLOBAL_ID() ((u64)blockIdx.x * (u64)blockDim.x + (u64)threadIdx.x)
#define LOCAL_ID() ((u32)threadIdx.x)
#define GROUP_ID() ((u64)blockIdx.x)
#define LOCAL_SIZE() ((u32)blockDim.x)
#define BARRIER() __syncthreads()
#define UNROLL _Pragma("unroll")
#define F32_BITS(x) __float_as_uint(x)
#define BITS_F32(u) __uint_as_float((u32)(u))
#define FLOOR_F32(x) floorf(x)
/* sqrtf, not __fsqrt_rn: ROCm 6.0's __clang_hip_math.h maps __fsqrt_rn to
 * __ocml_native_sqrt_f32 (an approximation), while sqrtf is correctly rounded under
 * -fhip-fp32-correctly-rounded-divide-sqrt, clang's default. */
#define SQRT_F32(x) sqrtf(x)
#define ATOMIC_CAS_U32(p, cmp, val) atomicCAS((unsigned int *)(p), (cmp), (val))
