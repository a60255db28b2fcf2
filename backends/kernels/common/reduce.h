/* The canonical reduction order (core/src/numerics/reduce.rs, docs/numerics.md §Reduction):
 * blocks of 128 consecutive terms (the last may be partial); inside a block 16 lanes start
 * at +0.0 and lane j adds terms j, j+16, ... in order; the lanes combine by the fixed tree
 * lane[j] = lane[j] + lane[j+s] for s = 8, 4, 2, 1; block totals are added in order to a
 * total that starts at +0.0. Every term is one rounded f32 value (products are rounded before
 * they are added: no FMA). Written for one work-item: nothing depends on warp width. */

#define REDUCE_BLOCK 128u
#define REDUCE_LANES 16u

/* The fixed lane tree over 16 lanes; returns lane[0]. */
FN float lane_tree(float *l) {
    UNROLL
    for (u32 s = 8u; s > 0u; s >>= 1) {
        UNROLL
        for (u32 j = 0u; j < s; j++) {
            l[j] = l[j] + l[j + s];
        }
    }
    return l[0];
}

/* RESULT = total of one block of LEN <= 128 terms TERM, an expression of the u32 index
 * variable K that runs over K0 .. K0+LEN-1 (reduce::canonical_block_sum: 16 lanes, then the
 * tree, without the final +0.0 + ...). Adding term i to lane i % 16 in increasing i keeps each
 * lane's order, so this is exactly the definition. */
#define CANONICAL_BLOCK_SUM(RESULT, K0, LEN, K, TERM)                                         \
    do {                                                                                      \
        float l_[16];                                                                         \
        UNROLL                                                                                \
        for (u32 j_ = 0u; j_ < 16u; j_++) {                                                   \
            l_[j_] = 0.0f;                                                                    \
        }                                                                                     \
        u32 len_ = (LEN);                                                                     \
        u32 i_ = 0u;                                                                          \
        for (; i_ + 16u <= len_; i_ += 16u) {                                                 \
            UNROLL                                                                            \
            for (u32 j_ = 0u; j_ < 16u; j_++) {                                               \
                u32 K = (K0) + i_ + j_;                                                       \
                l_[j_] = l_[j_] + (TERM);                                                     \
            }                                                                                 \
        }                                                                                     \
        UNROLL                                                                                \
        for (u32 j_ = 0u; j_ < 16u; j_++) {                                                   \
            if (i_ + j_ < len_) {                                                             \
                u32 K = (K0) + i_ + j_;                                                       \
                l_[j_] = l_[j_] + (TERM);                                                     \
            }                                                                                 \
        }                                                                                     \
        (RESULT) = lane_tree(l_);                                                             \
    } while (0)

/* RESULT = the canonical sum of TERM for the u32 index variable K over 0 .. N-1
 * (reduce::canonical_sum). N = 0 gives +0.0. */
#define CANONICAL_SUM(RESULT, N, K, TERM)                                                     \
    do {                                                                                      \
        u32 n_ = (N);                                                                         \
        float total_ = 0.0f;                                                                  \
        for (u32 k0_ = 0u; k0_ < n_; k0_ += REDUCE_BLOCK) {                                   \
            u32 blen_ = n_ - k0_ < REDUCE_BLOCK ? n_ - k0_ : REDUCE_BLOCK;                    \
            float blk_;                                                                       \
            CANONICAL_BLOCK_SUM(blk_, k0_, blen_, K, TERM);                                   \
            total_ = total_ + blk_;                                                           \
        }                                                                                     \
        (RESULT) = total_;                                                                    \
    } while (0)

/* Maximum in index order (reduce::max): m = -inf; m = v whenever v > m or v is NaN.
 * Any NaN gives NaN; equal values keep the first; n = 0 gives -inf. */
FN float reduce_max(GLOBAL const float *x, u32 n) {
    float m = BITS_F32(0xFF800000u);
    for (u32 i = 0u; i < n; i++) {
        float v = x[i];
        if (v > m || is_nan_f32(v)) {
            m = v;
        }
    }
    return m;
}
