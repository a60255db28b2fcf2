/* Block FP8 pieces shared by fp8_act_quant, block_fp8_matmul and moe_experts
 * (docs/numerics.md §6, spec §6.6). */

/* Columns per activation quantization group (FP8_ACT_BLOCK). */
#define FP8_BLOCK 128u
/* The smallest amax a block is scaled by: 1e-4 rounded to f32. */
#define FP8_AMAX_FLOOR BITS_F32(0x38D1B717u)
/* 448, the largest finite e4m3fn value. */
#define FP8_E4M3_MAX BITS_F32(0x43E00000u)
/* Activation scale formats (concord_kernels::scale_fmt_code): the scale as computed, or
 * rounded up to a power of two (DeepSeek-V3.1's scale_fmt "ue8m0"). */
#define SCALE_FMT_F32 0u
#define SCALE_FMT_UE8M0 1u

/* A normal f32 rounded up to the nearest power of two with bit operations only (no log2/exp2,
 * whose results differ between vendors): unchanged when its mantissa bits are zero, else
 * 2^(exponent + 1) with a zero mantissa. NaN and +-inf come back unchanged. */
FN float round_up_to_power_of_two(float s) {
    u32 b = F32_BITS(s);
    if ((b & 0x7F800000u) == 0x7F800000u || (b & 0x007FFFFFu) == 0u) {
        return s;
    }
    return BITS_F32((b & 0xFF800000u) + 0x00800000u);
}

/* Quantizes the len <= 128 values x[base ..] (F32 or BF16 by dt) into q[qbase ..] and returns
 * the block's scale: amax = max |x| (a NaN sticks), s = max(amax, 1e-4) / 448, rounded up to
 * a power of two when scale_fmt is SCALE_FMT_UE8M0, q = e4m3_satfinite(x / s). */
FN float quantize_block(GLOBAL const u8 *x, u32 dt, u64 base, u32 len, GLOBAL u8 *q, u64 qbase,
                        u32 scale_fmt) {
    float amax = 0.0f;
    for (u32 i = 0u; i < len; i++) {
        float a = abs_f32(load_act(x, base + i, dt));
        if (is_nan_f32(a) || a > amax) {
            amax = a;
        }
    }
    /* Written so that a NaN amax stays NaN. */
    float clamped = amax < FP8_AMAX_FLOOR ? FP8_AMAX_FLOOR : amax;
    float scale = clamped / FP8_E4M3_MAX;
    if (scale_fmt == SCALE_FMT_UE8M0) {
        scale = round_up_to_power_of_two(scale);
    }
    for (u32 i = 0u; i < len; i++) {
        q[qbase + i] = f32_to_e4m3_satfinite(load_act(x, base + i, dt) / scale);
    }
    return scale;
}

/* One element of the block-scaled FP8 GEMM: for row xq[xrow..xrow+k) with scales
 * xs[xsrow..], weight row w[wrow..wrow+k) with scales ws[wsrow..] (one per 128 columns):
 * acc = +0.0; acc = acc + (blocksum_kb * xs[kb]) * ws[kb] for kb in order, each block sum in
 * the canonical within-block order. */
FN float fp8_dot(GLOBAL const u8 *xq, u64 xrow, GLOBAL const float *xs, u64 xsrow,
                 GLOBAL const u8 *w, u64 wrow, GLOBAL const float *ws, u64 wsrow, u32 k) {
    float acc = 0.0f;
    u32 kb = 0u;
    for (u32 c0 = 0u; c0 < k; c0 += FP8_BLOCK, kb++) {
        u32 len = k - c0 < FP8_BLOCK ? k - c0 : FP8_BLOCK;
        float b;
        CANONICAL_BLOCK_SUM(b, c0, len, c,
                            e4m3_to_f32(xq[xrow + c]) * e4m3_to_f32(w[wrow + c]));
        acc = acc + (b * xs[xsrow + kb]) * ws[wsrow + kb];
    }
    return acc;
}
