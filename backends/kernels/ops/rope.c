/* rope: interleaved pairs of columns offset .. offset+dim of every head rotated by the host
 * tables at p = positions[t]: o[2i] = A(x0*c - x1*s), o[2i+1] = A(x0*s + x1*c) (each product
 * rounded, then one add) — x [T, H, W], cos/sin F32 [P, dim/2], positions U32 [T] -> [T, H, dim].
 * A position >= P reports ERR_ROPE_POSITION. One work-item per pair. */
KERNEL rope(IN_TENSOR(x), u32 x_dt, IN_TENSOR(cos_t), IN_TENSOR(sin_t), IN_TENSOR(pos),
            OUT_TENSOR(out), u32 out_dt, u32 tokens, u32 heads, u32 width, u32 offset, u32 dim,
            u32 table_rows, GLOBAL u32 *status) {
    u32 half_dim = dim / 2u;
    u64 i = GLOBAL_ID();
    if (i >= (u64)tokens * heads * half_dim) {
        return;
    }
    u64 row = i / half_dim;
    u64 pair = i % half_dim;
    u64 t = row / heads;
    u32 p = IN_AS(u32, pos)[t];
    if (p >= table_rows) {
        report_error(status, ERR_ROPE_POSITION, p, table_rows);
        return;
    }
    GLOBAL const u8 *xb = IN_BYTES(x);
    u64 xi = row * width + offset + 2u * pair;
    float x0 = load_act(xb, xi, x_dt);
    float x1 = load_act(xb, xi + 1u, x_dt);
    float c = IN_AS(float, cos_t)[(u64)p * half_dim + pair];
    float s = IN_AS(float, sin_t)[(u64)p * half_dim + pair];
    u64 oi = row * dim + 2u * pair;
    store_act(OUT_BYTES(out), oi, out_dt, x0 * c - x1 * s);
    store_act(OUT_BYTES(out), oi + 1u, out_dt, x0 * s + x1 * c);
}
