/* gather_rows: dst[t] = src[rows[t]], any dtype, as bytes — src [S, C], rows U32 [T] -> [T, C].
 * A row >= S reports ERR_GATHER_ROW and that output row is left unwritten. One work-item per
 * output byte; the row size is in bytes. */
KERNEL gather_rows(IN_TENSOR(src), IN_TENSOR(rows), OUT_TENSOR(dst), u32 tokens, u32 src_rows,
                   u64 row_bytes, GLOBAL u32 *status) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)tokens * row_bytes) {
        return;
    }
    u64 t = i / row_bytes;
    u64 b = i % row_bytes;
    u32 row = IN_AS(u32, rows)[t];
    if (row >= src_rows) {
        report_error(status, ERR_GATHER_ROW, row, src_rows);
        return;
    }
    OUT_BYTES(dst)[i] = IN_BYTES(src)[(u64)row * row_bytes + b];
}
