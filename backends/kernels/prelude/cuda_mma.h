/* CUDA's addition to fast programs only (common/tile_mma.h): one warp-wide BF16 tensor-core
 * product, C += A * B with A 16x16 row-major, B 16x8 column-major, f32 accumulators, the
 * fragments laid out as PTX ISA "mma.m16n8k16" specifies. Ampere (sm_80) and newer; older
 * architectures get the portable loop. Exact programs never include this file. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define HAS_TENSOR_CORE_MMA 1
static __device__ __forceinline__ void tensor_core_mma_bf16(float *c, u32 a0, u32 a1, u32 a2,
                                                            u32 a3, u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
#endif
