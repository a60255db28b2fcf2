/* matmul, fast mode: BF16 x [M, K] . BF16 w [N, K]^T -> [M, N] on tensor cores where the
 * device has them, tiled as common/tile_gemm.h describes. The parameters are the exact
 * kernel's; x_dt and w_dt are always DT_BF16 here (F32 operands keep the exact kernel: the
 * host picks). */
KERNEL matmul_fast_bf16(IN_TENSOR(x), u32 x_dt, IN_TENSOR(w), u32 w_dt, OUT_TENSOR(out),
                        u32 out_dt, u32 m, u32 n, u32 k) {
    LOCAL_ARRAY(u16, xt, TILE_M * TILE_LD);
    LOCAL_ARRAY(u16, wt, TILE_N * TILE_LD);
    u32 item = LOCAL_ID();
    u32 warp = item / WARP_ITEMS;
    u32 lane = item % WARP_ITEMS;
    u32 tiles_n = (n + TILE_N - 1u) / TILE_N;
    u32 m0 = (u32)(GROUP_ID() / tiles_n) * TILE_M;
    u32 n0 = (u32)(GROUP_ID() % tiles_n) * TILE_N;
    float acc[TILE_WARP_N][4];
    tile_zero(acc);
    for (u32 k0 = 0u; k0 < k; k0 += TILE_K) {
        stage_bf16(xt, IN_AS(u16, x), m0, m, k0, k, TILE_M, item);
        stage_bf16(wt, IN_AS(u16, w), n0, n, k0, k, TILE_N, item);
        BARRIER();
        tile_slice_mma(acc, xt, wt, k - k0 < TILE_K ? k - k0 : TILE_K, m - m0, warp, lane);
        BARRIER();
    }
    tile_store_act(OUT_BYTES(out), out_dt, acc, m0, n0, m, n, warp, lane);
}
