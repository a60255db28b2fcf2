/* matmul, fast mode: BF16 x [M, K] . BF16 w [N, K]^T -> [M, N] on tensor cores where the
 * device has them, tiled as common/tile_gemm.h describes. F32 operands keep the exact
 * kernel (the host picks). */
KERNEL matmul_fast_bf16(IN_TENSOR(x), IN_TENSOR(w), OUT_TENSOR(out), u32 out_dt, u32 m, u32 n,
                        u32 k) {
    LOCAL_ARRAY(u16, xt, TILE_M * TILE_LD);
    LOCAL_ARRAY(u16, wt, TILE_N * TILE_LD);
    u32 item = LOCAL_ID();
    u32 warp = item / WARP_ITEMS;
    u32 lane = item % WARP_ITEMS;
    u32 tiles_n = (n + TILE_N - 1u) / TILE_N;
    u32 m0 = (u32)(GROUP_ID() / tiles_n) * TILE_M;
    u32 n0 = (u32)(GROUP_ID() % tiles_n) * TILE_N;
    float acc[TILE_WARP_N][4];
    for (u32 j = 0u; j < TILE_WARP_N; j++) {
        for (u32 e = 0u; e < 4u; e++) {
            acc[j][e] = 0.0f;
        }
    }
    for (u32 k0 = 0u; k0 < k; k0 += TILE_K) {
        stage_bf16(xt, IN_AS(u16, x), m0, m, k0, k, TILE_M, item);
        stage_bf16(wt, IN_AS(u16, w), n0, n, k0, k, TILE_N, item);
        BARRIER();
        tile_slice_mma(acc, xt, wt, k - k0 < TILE_K ? k - k0 : TILE_K, m - m0, warp, lane);
        BARRIER();
    }
    for (u32 j = 0u; j < TILE_WARP_N; j++) {
        for (u32 e = 0u; e < 4u; e++) {
            u32 row = tile_y_row(m0, lane, e);
            u32 col = tile_y_col(n0, warp, j, lane, e);
            if (row < m && col < n) {
                store_act(OUT_BYTES(out), (u64)row * n + col, out_dt, acc[j][e]);
            }
        }
    }
}
