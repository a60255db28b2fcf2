/* add: out = A(a + b) elementwise — a, b [T, H] F32|BF16 -> [T, H]. */
KERNEL add(IN_TENSOR(a), u32 a_dt, IN_TENSOR(b), u32 b_dt, OUT_TENSOR(out), u32 out_dt, u64 n) {
    u64 i = GLOBAL_ID();
    if (i >= n) {
        return;
    }
    float av = load_act(IN_BYTES(a), i, a_dt);
    float bv = load_act(IN_BYTES(b), i, b_dt);
    store_act(OUT_BYTES(out), i, out_dt, av + bv);
}
