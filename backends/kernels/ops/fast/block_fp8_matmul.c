/* block_fp8_matmul, fast mode: per 128-column block kb, the block's products on tensor cores
 * (e4m3fn widened exactly to BF16), then y = y + (blocksum * xs[m, kb]) * ws[n / bn, kb] in
 * kb order, as the exact kernel scales — only the block sum's internal order differs. */
KERNEL block_fp8_matmul_fast(IN_TENSOR(xq), IN_TENSOR(xs), IN_TENSOR(w), IN_TENSOR(ws),
                             OUT_TENSOR(out), u32 out_dt, u32 m, u32 n, u32 k,
                             u32 block_rows) {
    LOCAL_ARRAY(u16, table, 256);
    LOCAL_ARRAY(u16, xt, TILE_M * TILE_LD);
    LOCAL_ARRAY(u16, wt, TILE_N * TILE_LD);
    u32 item = LOCAL_ID();
    u32 warp = item / WARP_ITEMS;
    u32 lane = item % WARP_ITEMS;
    u32 tiles_n = (n + TILE_N - 1u) / TILE_N;
    u32 m0 = (u32)(GROUP_ID() / tiles_n) * TILE_M;
    u32 n0 = (u32)(GROUP_ID() % tiles_n) * TILE_N;
    u32 kbs = (k + FP8_BLOCK - 1u) / FP8_BLOCK;
    GLOBAL const float *x_scale = IN_AS(float, xs);
    GLOBAL const float *w_scale = IN_AS(float, ws);
    fill_e4m3_table(table, item, TILE_GROUP);
    BARRIER();
    float acc[TILE_WARP_N][4];
    tile_zero(acc);
    for (u32 kb = 0u; kb < kbs; kb++) {
        u32 k0 = kb * FP8_BLOCK;
        stage_e4m3(xt, IN_BYTES(xq), table, m0, m, k0, k, TILE_M, item);
        stage_e4m3(wt, IN_BYTES(w), table, n0, n, k0, k, TILE_N, item);
        BARRIER();
        float block[TILE_WARP_N][4];
        tile_zero(block);
        tile_slice_mma(block, xt, wt, k - k0 < TILE_K ? k - k0 : TILE_K, m - m0, warp, lane);
        BARRIER();
        for (u32 j = 0u; j < TILE_WARP_N; j++) {
            for (u32 e = 0u; e < 4u; e++) {
                u32 row = tile_y_row(m0, lane, e);
                u32 col = tile_y_col(n0, warp, j, lane, e);
                if (row < m && col < n) {
                    acc[j][e] = acc[j][e] + (block[j][e] * x_scale[(u64)row * kbs + kb]) *
                                                w_scale[(u64)(col / block_rows) * kbs + kb];
                }
            }
        }
    }
    tile_store_act(OUT_BYTES(out), out_dt, acc, m0, n0, m, n, warp, lane);
}
