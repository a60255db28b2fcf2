/* Prelude for CUDA C++ through NVRTC: what the shared kernels need from the dialect.
 * Compile with -fmad=false (no contraction into FMA) and keep the defaults -prec-div=true,
 * -prec-sqrt=true, -ftz=false, so f32 + - * / sqrt are correctly rounded IEEE operations on
 * subnormals too. Nothing here depends on the warp width. No vendor headers are included:
 * BF16 and FP8 are stored as u16/u8 and converted by common/convert.h. */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;

#define KERNEL extern "C" __global__ void
#define FN static __device__ __forceinline__
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
#define SQRT_F32(x) __fsqrt_rn(x)
#define ATOMIC_CAS_U32(p, cmp, val) atomicCAS((unsigned int *)(p), (cmp), (val))

