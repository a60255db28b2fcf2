/* rms_norm: out = A(w * A(x * r)) per row of d, r = 1 / sqrt(ss / d + eps) with ss the
 * canonical sum of squares — x [T, d], w [d] -> [T, d].
 * rms_norm_scale: one work-item per row writes r; rms_norm_apply: one per element. */
FN float square_f32(float v) { return v * v; }

KERNEL rms_norm_scale(IN_TENSOR(x), u32 x_dt, GLOBAL float *r, u32 rows, u32 d, float eps) {
    u64 row = GLOBAL_ID();
    if (row >= rows) {
        return;
    }
    GLOBAL const u8 *xb = IN_BYTES(x);
    u64 base = row * d;
    float ss;
#define RMS_SS(LOAD_X) CANONICAL_SUM(ss, d, k, square_f32(LOAD_X(xb, base + k)))
    WITH_LOADS1(x_dt, RMS_SS);
#undef RMS_SS
    float mean = ss / (float)d;
    r[row] = rsqrt_for_norm(mean, eps);
}

KERNEL rms_norm_apply(IN_TENSOR(x), u32 x_dt, IN_TENSOR(w), u32 w_dt, GLOBAL const float *r,
                      OUT_TENSOR(out), u32 out_dt, u32 rows, u32 d) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)rows * d) {
        return;
    }
    u64 row = i / d;
    u64 c = i % d;
    float y = round_act(load_act(IN_BYTES(x), i, x_dt) * r[row], out_dt);
    store_act(OUT_BYTES(out), i, out_dt, load_act(IN_BYTES(w), c, w_dt) * y);
}
