/* moe_experts: routed experts of DeepSeekMoE. For token t and rank k (slot s = t*K + k) with
 * e = ids[s]: g = A(x . gate_e), u = A(x . up_e), h = A(silu(g) * u), eo = A(h . down_e); then
 * y = y + w[s] * eo over k in order from +0.0 (f32) and out = A(y) — x [T,H], ids U32 [T,K],
 * weights F32 [T,K], gate/up [E,I,H], down [E,H,I] -> [T,H]. An id >= E reports
 * ERR_MOE_EXPERT_ID.
 * Dense weights (F32|BF16) use the canonical dot. BlockFp8 weights (F8_E4M3 + F32 scales
 * [E, ceil(rows/bn), ceil(cols/128)]) quantize x and h per 128 columns exactly as
 * fp8_act_quant (with the op's scale format) and multiply exactly as block_fp8_matmul.
 * Kernels (scratch h [T*K, I], eo [T*K, H], plus quantized copies for FP8): gate_up (per slot
 * and intermediate column), down (per slot and hidden column), combine (per output element);
 * quant_x (per token and block) and quant_h (per slot and block) for FP8. */

KERNEL moe_experts_gate_up(IN_TENSOR(x), u32 x_dt, IN_TENSOR(ids), IN_TENSOR(gate), u32 gate_dt,
                           IN_TENSOR(up), u32 up_dt, GLOBAL float *h_out, u32 out_dt, u32 slots, u32 top_k,
                           u32 experts, u32 hidden, u32 inter, GLOBAL u32 *status) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)slots * inter) {
        return;
    }
    u64 s = i / inter;
    u64 r = i % inter;
    u32 e = IN_AS(u32, ids)[s];
    if (e >= experts) {
        report_error(status, ERR_MOE_EXPERT_ID, e, experts);
        return;
    }
    u64 xrow = (s / top_k) * hidden;
    u64 wrow = ((u64)e * inter + r) * hidden;
    GLOBAL const u8 *xb = IN_BYTES(x);
    GLOBAL const u8 *gb = IN_BYTES(gate);
    GLOBAL const u8 *ub = IN_BYTES(up);
    float g;
#define GATE_DOT(LOAD_X, LOAD_W) CANONICAL_SUM(g, hidden, c, LOAD_X(xb, xrow + c) * LOAD_W(gb, wrow + c))
    WITH_LOADS2(x_dt, gate_dt, GATE_DOT);
#undef GATE_DOT
    float u;
#define UP_DOT(LOAD_X, LOAD_W) CANONICAL_SUM(u, hidden, c, LOAD_X(xb, xrow + c) * LOAD_W(ub, wrow + c))
    WITH_LOADS2(x_dt, up_dt, UP_DOT);
#undef UP_DOT
    g = round_act(g, out_dt);
    u = round_act(u, out_dt);
    h_out[i] = round_act(silu_f32(g) * u, out_dt);
}

KERNEL moe_experts_down(GLOBAL const float *h, IN_TENSOR(ids), IN_TENSOR(down), u32 down_dt,
                        GLOBAL float *eo, u32 out_dt, u32 slots, u32 experts, u32 hidden,
                        u32 inter) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)slots * hidden) {
        return;
    }
    u64 s = i / hidden;
    u64 j = i % hidden;
    u32 e = IN_AS(u32, ids)[s];
    if (e >= experts) {
        return;
    }
    u64 wrow = ((u64)e * hidden + j) * inter;
    GLOBAL const float *hrow = h + s * inter;
    GLOBAL const u8 *db = IN_BYTES(down);
    float acc;
#define DOWN_DOT(LOAD_W) CANONICAL_SUM(acc, inter, c, hrow[c] * LOAD_W(db, wrow + c))
    WITH_LOADS1(down_dt, DOWN_DOT);
#undef DOWN_DOT
    eo[i] = round_act(acc, out_dt);
}

KERNEL moe_experts_combine(GLOBAL const float *eo, IN_TENSOR(weights), OUT_TENSOR(out),
                           u32 out_dt, u32 tokens, u32 top_k, u32 hidden) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)tokens * hidden) {
        return;
    }
    u64 t = i / hidden;
    u64 j = i % hidden;
    GLOBAL const float *w = IN_AS(float, weights) + t * top_k;
    float y = 0.0f;
    for (u32 k = 0u; k < top_k; k++) {
        y = y + w[k] * eo[(t * top_k + k) * hidden + j];
    }
    store_act(OUT_BYTES(out), i, out_dt, y);
}

/* FP8: quantizes rows of `cols` values of src (F32 or BF16 by dt) per 128 columns, scales in
 * scale_fmt. */
KERNEL moe_experts_quant(IN_TENSOR(src), u32 src_dt, GLOBAL u8 *q, GLOBAL float *qs, u32 rows,
                         u32 cols, u32 scale_fmt) {
    u32 kb = (cols + FP8_BLOCK - 1u) / FP8_BLOCK;
    u64 i = GLOBAL_ID();
    if (i >= (u64)rows * kb) {
        return;
    }
    u64 row = i / kb;
    u32 b = (u32)(i % kb);
    u32 c0 = b * FP8_BLOCK;
    u32 len = cols - c0 < FP8_BLOCK ? cols - c0 : FP8_BLOCK;
    u64 base = row * cols + c0;
    qs[i] = quantize_block(IN_BYTES(src), src_dt, base, len, q, base, scale_fmt);
}

KERNEL moe_experts_gate_up_fp8(GLOBAL const u8 *xq, GLOBAL const float *xs, IN_TENSOR(ids),
                               IN_TENSOR(gate), IN_TENSOR(gate_s), IN_TENSOR(up), IN_TENSOR(up_s),
                               GLOBAL float *h_out, u32 out_dt, u32 slots, u32 top_k, u32 experts,
                               u32 hidden, u32 inter, u32 block_rows, GLOBAL u32 *status) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)slots * inter) {
        return;
    }
    u64 s = i / inter;
    u64 r = i % inter;
    u32 e = IN_AS(u32, ids)[s];
    if (e >= experts) {
        report_error(status, ERR_MOE_EXPERT_ID, e, experts);
        return;
    }
    u32 kb = (hidden + FP8_BLOCK - 1u) / FP8_BLOCK;
    u64 per_expert = (u64)((inter + block_rows - 1u) / block_rows) * kb;
    u64 t = s / top_k;
    u64 wrow = ((u64)e * inter + r) * hidden;
    u64 srow = (u64)e * per_expert + (r / block_rows) * kb;
    float g = fp8_dot(xq, t * hidden, xs, t * kb, IN_BYTES(gate), wrow, IN_AS(float, gate_s), srow,
                      hidden);
    float u = fp8_dot(xq, t * hidden, xs, t * kb, IN_BYTES(up), wrow, IN_AS(float, up_s), srow,
                      hidden);
    g = round_act(g, out_dt);
    u = round_act(u, out_dt);
    h_out[i] = round_act(silu_f32(g) * u, out_dt);
}

KERNEL moe_experts_down_fp8(GLOBAL const u8 *hq, GLOBAL const float *hs, IN_TENSOR(ids),
                            IN_TENSOR(down), IN_TENSOR(down_s), GLOBAL float *eo, u32 out_dt,
                            u32 slots, u32 experts, u32 hidden, u32 inter, u32 block_rows) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)slots * hidden) {
        return;
    }
    u64 s = i / hidden;
    u64 j = i % hidden;
    u32 e = IN_AS(u32, ids)[s];
    if (e >= experts) {
        return;
    }
    u32 kb = (inter + FP8_BLOCK - 1u) / FP8_BLOCK;
    u64 per_expert = (u64)((hidden + block_rows - 1u) / block_rows) * kb;
    u64 wrow = ((u64)e * hidden + j) * inter;
    u64 srow = (u64)e * per_expert + (j / block_rows) * kb;
    float acc = fp8_dot(hq, s * inter, hs, s * kb, IN_BYTES(down), wrow, IN_AS(float, down_s), srow,
                        inter);
    eo[i] = round_act(acc, out_dt);
}
