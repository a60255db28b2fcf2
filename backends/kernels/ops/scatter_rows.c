/* scatter_rows: dst[slots[t]] = src[t] in t order (a later duplicate slot wins); other rows
 * untouched — src [T, C], slots U32 [T] -> dst [S, C]. A slot >= S reports ERR_SCATTER_SLOT
 * and nothing is written. One work-item per byte column of a row, walking t in order. */
KERNEL scatter_rows(IN_TENSOR(src), IN_TENSOR(slots), OUT_TENSOR(dst), u32 tokens, u32 dst_rows,
                    u64 row_bytes, GLOBAL u32 *status) {
    u64 b = GLOBAL_ID();
    if (b >= row_bytes) {
        return;
    }
    GLOBAL const u32 *sl = IN_AS(u32, slots);
    for (u32 t = 0u; t < tokens; t++) {
        if (sl[t] >= dst_rows) {
            if (b == 0u) {
                report_error(status, ERR_SCATTER_SLOT, sl[t], dst_rows);
            }
            return;
        }
    }
    GLOBAL const u8 *s = IN_BYTES(src);
    GLOBAL u8 *d = OUT_BYTES(dst);
    for (u32 t = 0u; t < tokens; t++) {
        d[(u64)sl[t] * row_bytes + b] = s[(u64)t * row_bytes + b];
    }
}
