/* swiglu: out = A(silu(g) * u) elementwise — g, u [T, I] F32|BF16 -> [T, I]. */
KERNEL swiglu(IN_TENSOR(g), u32 g_dt, IN_TENSOR(u), u32 u_dt, OUT_TENSOR(out), u32 out_dt, u64 n) {
    u64 i = GLOBAL_ID();
    if (i >= n) {
        return;
    }
    float gv = load_act(IN_BYTES(g), i, g_dt);
    float uv = load_act(IN_BYTES(u), i, u_dt);
    store_act(OUT_BYTES(out), i, out_dt, silu_f32(gv) * uv);
}
