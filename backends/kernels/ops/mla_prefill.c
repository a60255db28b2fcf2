/* mla_prefill: naive MLA attention of one sequence, per query t and head h (row = t*N + h):
 * score(u) = dot([q_nope ; q_pe], [k_nope(u) ; k_pe(u)]) * scale as ONE canonical dot of Dn+Dr
 * terms over the visible keys u <= positions[t]; p = softmax(score);
 * o[j] = A(sum_u p_u * v(u)[j]) in canonical order — q [T,N,Dn+Dr], q_pe [T,N,Dr],
 * kv [S,N,Dn+Dv], k_pe [S,Dr], positions U32 [T] -> [T,N,Dv]. Masked keys take no part.
 * Three kernels over a scratch of scores [T*N, S]: scores (per row and key), softmax (per
 * row), out (per output element). */

/* Keys a query at absolute position pos sees among `keys` cached ones. */
FN u32 mla_prefill_visible(u32 pos, u32 keys) { return (u64)pos + 1u < keys ? pos + 1u : keys; }

/* Term k of the concatenated dot [q_nope ; q_pe] . [k_nope(u) ; k_pe(u)]. */
FN float mla_prefill_term(GLOBAL const u8 *q, u32 q_dt, GLOBAL const u8 *q_pe, u32 qpe_dt,
                          GLOBAL const u8 *kv, u32 kv_dt, GLOBAL const u8 *k_pe, u32 kpe_dt,
                          u64 qrow, u64 qperow, u64 kvrow, u64 kperow, u32 nope, u32 k) {
    if (k < nope) {
        return load_act(q, qrow + k, q_dt) * load_act(kv, kvrow + k, kv_dt);
    }
    return load_act(q_pe, qperow + (k - nope), qpe_dt) * load_act(k_pe, kperow + (k - nope), kpe_dt);
}

KERNEL mla_prefill_scores(IN_TENSOR(q), u32 q_dt, IN_TENSOR(q_pe), u32 qpe_dt, IN_TENSOR(kv),
                          u32 kv_dt, IN_TENSOR(k_pe), u32 kpe_dt, IN_TENSOR(pos),
                          GLOBAL float *scores, u32 tokens, u32 heads, u32 q_width, u32 nope,
                          u32 rope, u32 kv_width, u32 keys, float scale) {
    u64 i = GLOBAL_ID();
    u64 rows = (u64)tokens * heads;
    if (i >= rows * keys) {
        return;
    }
    u64 row = i / keys;
    u32 u = (u32)(i % keys);
    u64 t = row / heads;
    u64 h = row % heads;
    if (u >= mla_prefill_visible(IN_AS(u32, pos)[t], keys)) {
        return;
    }
    GLOBAL const u8 *qb = IN_BYTES(q);
    GLOBAL const u8 *qpeb = IN_BYTES(q_pe);
    GLOBAL const u8 *kvb = IN_BYTES(kv);
    GLOBAL const u8 *kpeb = IN_BYTES(k_pe);
    u64 qrow = row * q_width;
    u64 qperow = row * rope;
    u64 kvrow = ((u64)u * heads + h) * kv_width;
    u64 kperow = (u64)u * rope;
    float d;
    CANONICAL_SUM(d, nope + rope, k,
                  mla_prefill_term(qb, q_dt, qpeb, qpe_dt, kvb, kv_dt, kpeb, kpe_dt, qrow, qperow,
                                   kvrow, kperow, nope, k));
    scores[i] = d * scale;
}

KERNEL mla_prefill_softmax(IN_TENSOR(pos), GLOBAL float *scores, u32 tokens, u32 heads,
                           u32 keys) {
    u64 row = GLOBAL_ID();
    if (row >= (u64)tokens * heads) {
        return;
    }
    u32 s = mla_prefill_visible(IN_AS(u32, pos)[row / heads], keys);
    softmax_in_place(scores + row * keys, s);
}

KERNEL mla_prefill_out(IN_TENSOR(kv), u32 kv_dt, IN_TENSOR(pos), GLOBAL const float *scores,
                       OUT_TENSOR(out), u32 out_dt, u32 tokens, u32 heads, u32 nope,
                       u32 kv_width, u32 keys) {
    u32 dv = kv_width - nope;
    u64 i = GLOBAL_ID();
    if (i >= (u64)tokens * heads * dv) {
        return;
    }
    u64 row = i / dv;
    u64 j = i % dv;
    u64 h = row % heads;
    u32 s = mla_prefill_visible(IN_AS(u32, pos)[row / heads], keys);
    GLOBAL const float *p = scores + row * keys;
    GLOBAL const u8 *kvb = IN_BYTES(kv);
    float acc;
#define PV_SUM(LOAD_V) CANONICAL_SUM(acc, s, u, p[u] * LOAD_V(kvb, ((u64)u * heads + h) * kv_width + nope + j))
    WITH_LOADS1(kv_dt, PV_SUM);
#undef PV_SUM
    store_act(OUT_BYTES(out), i, out_dt, acc);
}
