/* slice_columns: copy of columns start .. start+len of every row, any dtype, as bytes —
 * x [T, C] -> [T, len]. One work-item per output byte; row sizes and start are in bytes. */
KERNEL slice_columns(IN_TENSOR(x), OUT_TENSOR(out), u32 rows, u64 row_in, u64 row_out,
                     u64 start) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)rows * row_out) {
        return;
    }
    u64 r = i / row_out;
    u64 b = i % row_out;
    OUT_BYTES(out)[i] = IN_BYTES(x)[r * row_in + start + b];
}
