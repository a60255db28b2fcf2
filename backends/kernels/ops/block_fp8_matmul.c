/* block_fp8_matmul: y[m, n] = A(sum_kb (blocksum_kb * xs[m, kb]) * ws[n / bn, kb]) — xq F8 [M, K],
 * xs F32 [M, ceil(K/128)], w F8_E4M3 [N, K], ws F32 [ceil(N/bn), ceil(K/128)] -> [M, N].
 * One work-item per output element. */
KERNEL block_fp8_matmul(IN_TENSOR(xq), IN_TENSOR(xs), IN_TENSOR(w), IN_TENSOR(ws),
                        OUT_TENSOR(out), u32 out_dt, u32 m, u32 n, u32 k, u32 block_rows) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)m * n) {
        return;
    }
    u32 kb = (k + FP8_BLOCK - 1u) / FP8_BLOCK;
    u64 mi = i / n;
    u64 j = i % n;
    float acc = fp8_dot(IN_BYTES(xq), mi * k, IN_AS(float, xs), mi * kb, IN_BYTES(w), j * k,
                        IN_AS(float, ws), (j / block_rows) * kb, k);
    store_act(OUT_BYTES(out), i, out_dt, acc);
}
