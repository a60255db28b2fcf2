/* embedding: out[t, c] = A(table[ids[t], c]) — ids U32 [T], table F32|BF16 [V, H] -> [T, H].
 * An id >= V reports ERR_EMBEDDING_ID. One work-item per output element. */
KERNEL embedding(IN_TENSOR(ids), IN_TENSOR(table), u32 table_dt, OUT_TENSOR(out), u32 out_dt,
                 u32 tokens, u32 vocab, u32 hidden, GLOBAL u32 *status) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)tokens * hidden) {
        return;
    }
    u64 t = i / hidden;
    u64 c = i % hidden;
    u32 id = IN_AS(u32, ids)[t];
    if (id >= vocab) {
        report_error(status, ERR_EMBEDDING_ID, id, vocab);
        return;
    }
    store_act(OUT_BYTES(out), i, out_dt, load_act(IN_BYTES(table), (u64)id * hidden + c, table_dt));
}
