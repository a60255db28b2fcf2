/* Fast mode only: the work-group tiling the fast GEMM kernels share (ops/fast/). A group of
 * TILE_GROUP work-items (four warps) computes a TILE_M x TILE_N block of y = x . w^T; warp w
 * owns columns [16w, 16w + 16) of the block as two 16 x 8 MMA tiles (common/tile_mma.h).
 * K runs in TILE_K slices in increasing order, each slice in MMA_K steps in increasing
 * order; slices are staged in local memory as BF16 bits, zero-padded past M, N and K.
 * Nothing of this depends on M, so a row's result is the same in any batch.
 * The host launches exactly TILE_GROUP items per group, tiles_m * tiles_n groups. */

#define TILE_GROUP 128u
#define TILE_M 16u
#define TILE_N 64u
/* One FP8 scale block (FP8_BLOCK), so the block-scaled kernel scales whole slices. */
#define TILE_K 128u
/* Padded row length: the eight rows one fragment load touches fall in different banks. */
#define TILE_LD (TILE_K + 8u)
/* MMA tiles per warp along N. */
#define TILE_WARP_N 2u

/* Stages rows [r0, r0 + tile_rows) x columns [k0, k0 + TILE_K) of a BF16 matrix [rows, k]
 * into tile[tile_rows][TILE_LD]; the group's items share the work, consecutive items take
 * consecutive columns (coalesced loads). */
FN void stage_bf16(LOCAL u16 *tile, GLOBAL const u16 *src, u32 r0, u32 rows, u32 k0, u32 k,
                   u32 tile_rows, u32 item) {
    for (u32 e = item; e < tile_rows * TILE_K; e += TILE_GROUP) {
        u32 r = e / TILE_K;
        u32 c = e % TILE_K;
        int inside = r0 + r < rows && k0 + c < k;
        tile[r * TILE_LD + c] = inside ? src[(u64)(r0 + r) * k + k0 + c] : (u16)0u;
    }
}

/* The same for an e4m3fn matrix, widened exactly to BF16 through `table`
 * (fill_e4m3_table). */
FN void stage_e4m3(LOCAL u16 *tile, GLOBAL const u8 *src, LOCAL const u16 *table, u32 r0,
                   u32 rows, u32 k0, u32 k, u32 tile_rows, u32 item) {
    for (u32 e = item; e < tile_rows * TILE_K; e += TILE_GROUP) {
        u32 r = e / TILE_K;
        u32 c = e % TILE_K;
        int inside = r0 + r < rows && k0 + c < k;
        tile[r * TILE_LD + c] = inside ? table[src[(u64)(r0 + r) * k + k0 + c]] : (u16)0u;
    }
}

/* acc[j] += the staged slice's product for this warp's two MMA tiles, over the slice's first
 * `len` columns rounded up to MMA_K (the rest is zero padding); `rows` of the TILE_M x rows
 * hold data. */
FN void tile_slice_mma(float acc[TILE_WARP_N][4], LOCAL const u16 *xt, LOCAL const u16 *wt,
                       u32 len, u32 rows, u32 warp, u32 lane) {
    for (u32 kk = 0u; kk < len; kk += MMA_K) {
        for (u32 j = 0u; j < TILE_WARP_N; j++) {
            mma_bf16_16x8x16(acc[j], xt + kk, TILE_LD,
                             wt + (warp * MMA_N * TILE_WARP_N + j * MMA_N) * TILE_LD + kk,
                             TILE_LD, rows, lane);
        }
    }
}

/* Clears a warp's accumulators. */
FN void tile_zero(float acc[TILE_WARP_N][4]) {
    for (u32 j = 0u; j < TILE_WARP_N; j++) {
        for (u32 e = 0u; e < 4u; e++) {
            acc[j][e] = 0.0f;
        }
    }
}

/* Row and column of y held in acc[j][e] by this lane of group (m0, n0). */
FN u32 tile_y_row(u32 m0, u32 lane, u32 e) { return m0 + tile_row(lane, e); }
FN u32 tile_y_col(u32 n0, u32 warp, u32 j, u32 lane, u32 e) {
    return n0 + warp * MMA_N * TILE_WARP_N + j * MMA_N + tile_col(lane, e);
}

/* Stores A(acc) into y [m, n] at this lane's elements of group (m0, n0), inside the matrix. */
FN void tile_store_act(GLOBAL u8 *y, u32 out_dt, float acc[TILE_WARP_N][4], u32 m0, u32 n0,
                       u32 m, u32 n, u32 warp, u32 lane) {
    for (u32 j = 0u; j < TILE_WARP_N; j++) {
        for (u32 e = 0u; e < 4u; e++) {
            u32 row = tile_y_row(m0, lane, e);
            u32 col = tile_y_col(n0, warp, j, lane, e);
            if (row < m && col < n) {
                store_act(y, (u64)row * n + col, out_dt, acc[j][e]);
            }
        }
    }
}
