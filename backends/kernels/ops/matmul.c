/* matmul: y[m, n] = A(dot(x[m, :], w[n, :])) with the canonical dot — x [M, K] F32|BF16,
 * w [N, K] F32|BF16 -> [M, N]. One work-item per output element. */
KERNEL matmul(IN_TENSOR(x), u32 x_dt, IN_TENSOR(w), u32 w_dt, OUT_TENSOR(out), u32 out_dt,
              u32 m, u32 n, u32 k) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)m * n) {
        return;
    }
    u64 xrow = (i / n) * k;
    u64 wrow = (i % n) * k;
    GLOBAL const u8 *xb = IN_BYTES(x);
    GLOBAL const u8 *wb = IN_BYTES(w);
    float acc;
#define MATMUL_DOT(LOAD_X, LOAD_W) CANONICAL_SUM(acc, k, c, LOAD_X(xb, xrow + c) * LOAD_W(wb, wrow + c))
    WITH_LOADS2(x_dt, w_dt, MATMUL_DOT);
#undef MATMUL_DOT
    store_act(OUT_BYTES(out), i, out_dt, acc);
}
