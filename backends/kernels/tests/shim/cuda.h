/* Test-only stand-in for the CUDA runtime headers NVRTC provides, so clang can compile the
 * CUDA programs to NVPTX LLVM IR without a CUDA installation (tests/dialects.rs). Declares only
 * what prelude/cuda.h uses. */
#include "__clang_cuda_builtin_vars.h"
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __shared__ __attribute__((shared))
__device__ inline unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }
__device__ inline float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
__device__ inline float floorf(float x) { return __builtin_floorf(x); }
__device__ inline float __fsqrt_rn(float x) { return __builtin_sqrtf(x); }
__device__ unsigned atomicCAS(unsigned *p, unsigned c, unsigned v);
__device__ void __syncthreads();
