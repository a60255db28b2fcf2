/* mla_decode: weight-absorbed MLA over the latent cache, per query t and head h
 * (row = t*N + h), W = wkv_b rows h*(Dn+Dv) ..:
 * q_lat[c] = sum_j q_nope[j] * W[j, c] (canonical over j, f32);
 * score(u) = (dot(q_lat, latent[u]) + dot(q_pe, k_pe[u])) * scale over u <= positions[t];
 * p = softmax(score); o_lat[c] = sum_u p_u * latent[u, c] (canonical, f32);
 * o[j] = A(dot(o_lat, W[Dn + j, :])) — q [T,N,Dn+Dr], q_pe [T,N,Dr], wkv_b [N*(Dn+Dv), R],
 * latent [S,R], k_pe [S,Dr], positions U32 [T] -> [T,N,Dv].
 * Five kernels over scratch q_lat [T*N, R], scores [T*N, S], o_lat [T*N, R]. */

FN u32 mla_decode_visible(u32 pos, u32 keys) { return (u64)pos + 1u < keys ? pos + 1u : keys; }

KERNEL mla_decode_q_lat(IN_TENSOR(q), u32 q_dt, IN_TENSOR(w), u32 w_dt, GLOBAL float *q_lat,
                        u32 tokens, u32 heads, u32 q_width, u32 nope, u32 v_dim, u32 rank) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)tokens * heads * rank) {
        return;
    }
    u64 row = i / rank;
    u64 c = i % rank;
    u64 base = (row % heads) * (nope + v_dim);
    GLOBAL const u8 *qb = IN_BYTES(q);
    GLOBAL const u8 *wb = IN_BYTES(w);
    u64 qrow = row * q_width;
    float acc;
#define Q_LAT(LOAD_Q, LOAD_W) CANONICAL_SUM(acc, nope, j, LOAD_Q(qb, qrow + j) * LOAD_W(wb, (base + j) * rank + c))
    WITH_LOADS2(q_dt, w_dt, Q_LAT);
#undef Q_LAT
    q_lat[i] = acc;
}

KERNEL mla_decode_scores(GLOBAL const float *q_lat, IN_TENSOR(q_pe), u32 qpe_dt, IN_TENSOR(latent),
                         u32 lat_dt, IN_TENSOR(k_pe), u32 kpe_dt, IN_TENSOR(pos),
                         GLOBAL float *scores, u32 tokens, u32 heads, u32 rope, u32 rank,
                         u32 keys, float scale) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)tokens * heads * keys) {
        return;
    }
    u64 row = i / keys;
    u32 u = (u32)(i % keys);
    if (u >= mla_decode_visible(IN_AS(u32, pos)[row / heads], keys)) {
        return;
    }
    GLOBAL const float *ql = q_lat + row * rank;
    GLOBAL const u8 *latb = IN_BYTES(latent);
    GLOBAL const u8 *qpeb = IN_BYTES(q_pe);
    GLOBAL const u8 *kpeb = IN_BYTES(k_pe);
    u64 lrow = (u64)u * rank;
    u64 qperow = row * rope;
    u64 kperow = (u64)u * rope;
    float lat;
#define LAT_DOT(LOAD_L) CANONICAL_SUM(lat, rank, c, ql[c] * LOAD_L(latb, lrow + c))
    WITH_LOADS1(lat_dt, LAT_DOT);
#undef LAT_DOT
    float pe;
#define PE_DOT(LOAD_Q, LOAD_K) CANONICAL_SUM(pe, rope, c, LOAD_Q(qpeb, qperow + c) * LOAD_K(kpeb, kperow + c))
    WITH_LOADS2(qpe_dt, kpe_dt, PE_DOT);
#undef PE_DOT
    scores[i] = (lat + pe) * scale;
}

KERNEL mla_decode_softmax(IN_TENSOR(pos), GLOBAL float *scores, u32 tokens, u32 heads, u32 keys) {
    u64 row = GLOBAL_ID();
    if (row >= (u64)tokens * heads) {
        return;
    }
    u32 s = mla_decode_visible(IN_AS(u32, pos)[row / heads], keys);
    softmax_in_place(scores + row * keys, s);
}

KERNEL mla_decode_o_lat(GLOBAL const float *scores, IN_TENSOR(latent), u32 lat_dt, IN_TENSOR(pos),
                        GLOBAL float *o_lat, u32 tokens, u32 heads, u32 rank, u32 keys) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)tokens * heads * rank) {
        return;
    }
    u64 row = i / rank;
    u64 c = i % rank;
    u32 s = mla_decode_visible(IN_AS(u32, pos)[row / heads], keys);
    GLOBAL const float *p = scores + row * keys;
    GLOBAL const u8 *latb = IN_BYTES(latent);
    float acc;
#define O_LAT(LOAD_L) CANONICAL_SUM(acc, s, u, p[u] * LOAD_L(latb, (u64)u * rank + c))
    WITH_LOADS1(lat_dt, O_LAT);
#undef O_LAT
    o_lat[i] = acc;
}

KERNEL mla_decode_out(GLOBAL const float *o_lat, IN_TENSOR(w), u32 w_dt, OUT_TENSOR(out),
                      u32 out_dt, u32 tokens, u32 heads, u32 nope, u32 v_dim, u32 rank) {
    u64 i = GLOBAL_ID();
    if (i >= (u64)tokens * heads * v_dim) {
        return;
    }
    u64 row = i / v_dim;
    u64 j = i % v_dim;
    u64 wrow = ((row % heads) * (nope + v_dim) + nope + j) * rank;
    GLOBAL const float *ol = o_lat + row * rank;
    GLOBAL const u8 *wb = IN_BYTES(w);
    float acc;
#define OUT_DOT(LOAD_W) CANONICAL_SUM(acc, rank, c, ol[c] * LOAD_W(wb, wrow + c))
    WITH_LOADS1(w_dt, OUT_DOT);
#undef OUT_DOT
    store_act(OUT_BYTES(out), i, out_dt, acc);
}
