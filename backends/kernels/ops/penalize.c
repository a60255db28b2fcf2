/* penalize: the repetition, frequency and presence penalties (docs/numerics.md §Sampling) —
 * logits F32 [B, V], seen U32 [B, K, 3] -> F32 [B, V].
 * penalize_copy (one work-item per element) copies the logits; penalize_apply (one work-item
 * per row, entries in order) then takes each entry (id, c, in_prompt) with id < V: if c > 0 or
 * in_prompt != 0, l = l > 0 ? l / r : l * r; then if c > 0, l = (l - f * (float)c) - p, every
 * operation rounded on its own (no contraction into FMA: see the prelude). */

KERNEL penalize_copy(IN_TENSOR(logits), OUT_TENSOR(out), u64 n) {
    u64 i = GLOBAL_ID();
    if (i >= n) {
        return;
    }
    OUT_AS(float, out)[i] = IN_AS(float, logits)[i];
}

KERNEL penalize_apply(IN_TENSOR(seen), OUT_TENSOR(out), u32 rows, u32 vocab, u32 entries,
                      float repetition, float frequency, float presence) {
    u64 row = GLOBAL_ID();
    if (row >= rows) {
        return;
    }
    GLOBAL const u32 *e = IN_AS(u32, seen) + row * (u64)entries * 3u;
    GLOBAL float *lg = OUT_AS(float, out) + row * (u64)vocab;
    for (u32 j = 0u; j < entries; j++) {
        u32 id = e[3u * j];
        u32 count = e[3u * j + 1u];
        u32 in_prompt = e[3u * j + 2u];
        if (id >= vocab) {
            continue;
        }
        float l = lg[id];
        if (count > 0u || in_prompt != 0u) {
            if (l > 0.0f) {
                l = l / repetition;
            } else {
                l = l * repetition;
            }
        }
        if (count > 0u) {
            float scaled = frequency * (float)count;
            l = l - scaled;
            l = l - presence;
        }
        lg[id] = l;
    }
}
