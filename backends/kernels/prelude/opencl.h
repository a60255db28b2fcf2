/* Prelude for OpenCL C 1.2 (also valid OpenCL C 3.0): what the shared kernels need from the
 * dialect. Built with -cl-std=CL1.2 -cl-fp32-correctly-rounded-divide-sqrt and without
 * -cl-fast-relaxed-math, -cl-mad-enable or -cl-denorms-are-zero, so f32 + - * / sqrt are
 * correctly rounded IEEE operations on subnormals too. */

/* No contraction of a*b+c into a fused multiply-add anywhere in the program. */
#pragma OPENCL FP_CONTRACT OFF

typedef uchar u8;
typedef ushort u16;
typedef uint u32;
typedef int i32;
typedef ulong u64;

/* A kernel entry point (returns void). */
#define KERNEL __kernel void
/* A device helper function. */
#define FN static inline
/* Pointer address spaces. */
#define GLOBAL __global
#define LOCAL __local
/* A work-group-shared array declared inside a kernel. */
#define LOCAL_ARRAY(type, name, n) __local type name[n]
/* Work-item indices (1-D launches; the host rounds the global size up, kernels guard). */
#define GLOBAL_ID() ((u64)get_global_id(0))
#define LOCAL_ID() ((u32)get_local_id(0))
#define GROUP_ID() ((u64)get_group_id(0))
#define LOCAL_SIZE() ((u32)get_local_size(0))
/* Work-group barrier over local and global memory. */
#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)
/* Loop unrolling hint (never changes results). */
#define UNROLL _Pragma("unroll")
/* Exact bit casts. */
#define F32_BITS(x) as_uint(x)
#define BITS_F32(u) as_float((u32)(u))
/* Correctly rounded (exact for floor) f32 functions. */
#define FLOOR_F32(x) floor(x)
#define SQRT_F32(x) sqrt(x)
/* 32-bit compare-and-swap on global memory; returns the old value. */
#define ATOMIC_CAS_U32(p, cmp, val) atomic_cmpxchg((volatile __global uint *)(p), (cmp), (val))
