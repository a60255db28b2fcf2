/* Fast mode only (docs/numerics.md §1): the warp-wide 16 x 8 x 16 matrix product the fast
 * kernels are built from, on tensor cores where the dialect has them (prelude/cuda.h defines
 * HAS_TENSOR_CORE_MMA on sm_80 and newer) and as a portable loop everywhere else.
 *
 * Both forms give every lane the same four accumulator elements, laid out as PTX's
 * mma.m16n8k16 accumulator fragment: lane l holds rows l/4 and l/4 + 8, columns
 * 2(l%4) and 2(l%4) + 1 of the 16 x 8 tile (tile_row, tile_col). So the kernels index,
 * scale and store results the same way whatever computes the product, and the portable form
 * run on OpenCL in CI checks everything around the instruction itself.
 *
 * Operands are BF16 bits in local memory: A row-major [16][lda] (rows of x), B n-major
 * [8][ldb] (rows of w, i.e. B's columns), both with the k index contiguous. Accumulation is
 * f32. The order of the 16 products inside one step is the tensor core's (unspecified);
 * the steps, and so an element's whole reduction, run in a fixed order chosen without
 * looking at M, which keeps the fast kernels deterministic and batch-invariant. */

#define WARP_ITEMS 32u
#define MMA_M 16u
#define MMA_N 8u
#define MMA_K 16u

/* Row and column inside the 16 x 8 tile of accumulator element e (0..3) of lane `lane`. */
FN u32 tile_row(u32 lane, u32 e) { return (lane >> 2) + ((e >> 1) << 3); }
FN u32 tile_col(u32 lane, u32 e) { return ((lane & 3u) << 1) + (e & 1u); }

/* Two consecutive BF16 values as one 32-bit register, the lower index in the low half. */
FN u32 bf16_pair(LOCAL const u16 *p) { return (u32)p[0] | ((u32)p[1] << 16); }

/* acc[0..3] += A[16 x 16] * B[16 x 8] for this lane's four elements. Every lane of the warp
 * calls it together (on tensor cores the instruction is warp-collective). Only A's first
 * `rows` rows hold data (the rest is zero padding): the portable loop skips the others, whose
 * results nobody stores; the tensor core computes them anyway, at no cost. */
FN void mma_bf16_16x8x16(float *acc, LOCAL const u16 *a, u32 lda, LOCAL const u16 *b, u32 ldb,
                         u32 rows, u32 lane) {
#ifdef HAS_TENSOR_CORE_MMA
    u32 g = lane >> 2;
    u32 t2 = (lane & 3u) << 1;
    tensor_core_mma_bf16(acc, bf16_pair(a + g * lda + t2), bf16_pair(a + (g + 8u) * lda + t2),
                         bf16_pair(a + g * lda + t2 + 8u),
                         bf16_pair(a + (g + 8u) * lda + t2 + 8u), bf16_pair(b + g * ldb + t2),
                         bf16_pair(b + g * ldb + t2 + 8u));
#else
    for (u32 e = 0u; e < 4u; e++) {
        if (tile_row(lane, e) >= rows) {
            continue;
        }
        LOCAL const u16 *ar = a + tile_row(lane, e) * lda;
        LOCAL const u16 *br = b + tile_col(lane, e) * ldb;
        float s = 0.0f;
        for (u32 kk = 0u; kk < MMA_K; kk++) {
            s = s + bf16_to_f32(ar[kk]) * bf16_to_f32(br[kk]);
        }
        acc[e] = acc[e] + s;
    }
#endif
}

/* The BF16 bits of an e4m3fn byte: exact, since every e4m3fn value is a BF16 value. */
FN u16 e4m3_to_bf16_bits(u32 b) { return (u16)(F32_BITS(e4m3_to_f32(b)) >> 16); }

/* Fills a 256-entry local table with e4m3_to_bf16_bits of every byte; the work-group's
 * items share the work. A barrier must follow before it is read. */
FN void fill_e4m3_table(LOCAL u16 *table, u32 item, u32 items) {
    for (u32 v = item; v < 256u; v += items) {
        table[v] = e4m3_to_bf16_bits(v);
    }
}
