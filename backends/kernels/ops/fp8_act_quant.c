/* fp8_act_quant: per row, per 128 columns (the last block may be partial):
 * s = max(amax, 1e-4) / 448 (rounded up to a power of two for SCALE_FMT_UE8M0),
 * q = e4m3_satfinite(x / s) — x [M, K] F32|BF16 -> (q F8_E4M3 [M, K], s F32 [M, ceil(K/128)]).
 * One work-item per (row, block). */
KERNEL fp8_act_quant(IN_TENSOR(x), u32 x_dt, OUT_TENSOR(q), OUT_TENSOR(s), u32 rows, u32 k,
                     u32 scale_fmt) {
    u32 kb = (k + FP8_BLOCK - 1u) / FP8_BLOCK;
    u64 i = GLOBAL_ID();
    if (i >= (u64)rows * kb) {
        return;
    }
    u64 row = i / kb;
    u32 b = (u32)(i % kb);
    u32 c0 = b * FP8_BLOCK;
    u32 len = k - c0 < FP8_BLOCK ? k - c0 : FP8_BLOCK;
    u64 base = row * k + c0;
    OUT_AS(float, s)[i] =
        quantize_block(IN_BYTES(x), x_dt, base, len, OUT_BYTES(q), base, scale_fmt);
}
