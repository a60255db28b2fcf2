/* sample: next-token choice per row over ids < valid_vocab (docs/numerics.md §Sampling) —
 * logits F32 [B, V], uniform F32 [B] -> ids U32 [B].
 * Greedy -- argmax, ties -> lower id, NaN never wins (all NaN -> 0) -- when temperature <
 * SAMPLE_GREEDY_BELOW (Sample::GREEDY_BELOW, 1e-5f = 0x3727C5AC) or the highest logit m is
 * +-inf. Otherwise l_i = (logits_i - m) / temperature (<= 0, so nothing overflows);
 * candidates are the non-NaN l (in id order); if min_p > 0, q = softmax over every candidate
 * in id order and the candidates with q < min_p * max q go; the rest sorted by l descending (ties ->
 * lower id); keep the first top_k (0 = all); softmax over the kept values in sorted order; if
 * top_p < 1 keep the shortest prefix whose running sum (in order, from +0.0) reaches top_p;
 * total = running sum of the kept probabilities; the first kept id whose running sum exceeds
 * uniform * total wins (the last kept one if none does; the best-ranked one if total is not
 * > 0). No candidate at all -> 0.
 * One work-item per row over scratch vals, order and probs [B, V]: a bounded heap keeps the
 * best top_k candidates, then heapsort orders them best first. */

#define SAMPLE_GREEDY_BELOW 1e-5f

/* Whether x is neither infinite nor NaN (bit test: no fast-math dependence). */
FN int sample_is_finite(float x) { return (F32_BITS(x) & 0x7F800000u) != 0x7F800000u; }

/* Whether candidate a ranks before candidate b (values are never NaN here). */
FN int sample_before(GLOBAL const float *vals, u32 a, u32 b) {
    float va = vals[a];
    float vb = vals[b];
    if (va > vb) {
        return 1;
    }
    if (va < vb) {
        return 0;
    }
    return a < b;
}

/* Restores the heap property (worst candidate on top) below node i of heap[0..n). */
FN void sample_sift_down(GLOBAL const float *vals, GLOBAL u32 *heap, u32 n, u32 i) {
    for (;;) {
        u32 worst = i;
        u32 l = 2u * i + 1u;
        u32 r = l + 1u;
        if (l < n && sample_before(vals, heap[worst], heap[l])) {
            worst = l;
        }
        if (r < n && sample_before(vals, heap[worst], heap[r])) {
            worst = r;
        }
        if (worst == i) {
            return;
        }
        u32 tmp = heap[i];
        heap[i] = heap[worst];
        heap[worst] = tmp;
        i = worst;
    }
}

KERNEL sample(IN_TENSOR(logits), IN_TENSOR(uniform), OUT_TENSOR(ids), GLOBAL float *vals_scratch,
              GLOBAL u32 *order_scratch, GLOBAL float *probs_scratch, u32 rows, u32 vocab,
              u32 valid, float temperature, u32 top_k, float top_p, float min_p) {
    u64 row = GLOBAL_ID();
    if (row >= rows) {
        return;
    }
    GLOBAL const float *lg = IN_AS(float, logits) + row * vocab;
    GLOBAL u32 *out = OUT_AS(u32, ids) + row;

    u32 best = valid;
    for (u32 i = 0u; i < valid; i++) {
        float l = lg[i];
        if (is_nan_f32(l)) {
            continue;
        }
        if (best == valid || !(lg[best] >= l)) {
            best = i;
        }
    }
    if (best == valid) {
        *out = 0u;
        return;
    }
    float top = lg[best];
    if (temperature < SAMPLE_GREEDY_BELOW || !sample_is_finite(top)) {
        *out = best;
        return;
    }

    GLOBAL float *vals = vals_scratch + row * vocab;
    GLOBAL u32 *order = order_scratch + row * vocab;
    GLOBAL float *probs = probs_scratch + row * vocab;
    u32 n = 0u;
    for (u32 i = 0u; i < valid; i++) {
        float v = (lg[i] - top) / temperature;
        vals[i] = v;
        if (!is_nan_f32(v)) {
            order[n] = i;
            n++;
        }
    }
    if (n == 0u) {
        *out = 0u;
        return;
    }
    if (min_p > 0.0f) {
        /* probs[j] = softmax over the candidates in id order; keep those >= min_p * max. */
        for (u32 j = 0u; j < n; j++) {
            probs[j] = vals[order[j]];
        }
        softmax_in_place(probs, n);
        float highest = 0.0f;
        for (u32 j = 0u; j < n; j++) {
            if (probs[j] > highest) {
                highest = probs[j];
            }
        }
        float threshold = min_p * highest;
        u32 m = 0u;
        for (u32 j = 0u; j < n; j++) {
            if (probs[j] >= threshold) {
                order[m] = order[j];
                m++;
            }
        }
        n = m;
    }
    u32 kept = top_k > 0u && top_k < n ? top_k : n;
    /* The best `kept` candidates: a heap with the worst on top, then heapsort. */
    for (u32 i = kept / 2u; i > 0u; i--) {
        sample_sift_down(vals, order, kept, i - 1u);
    }
    for (u32 j = kept; j < n; j++) {
        u32 c = order[j];
        if (sample_before(vals, c, order[0])) {
            order[0] = c;
            sample_sift_down(vals, order, kept, 0u);
        }
    }
    for (u32 end = kept - 1u; end > 0u; end--) {
        u32 tmp = order[0];
        order[0] = order[end];
        order[end] = tmp;
        sample_sift_down(vals, order, end, 0u);
    }

    for (u32 i = 0u; i < kept; i++) {
        probs[i] = vals[order[i]];
    }
    softmax_in_place(probs, kept);
    if (top_p < 1.0f) {
        float c = 0.0f;
        for (u32 i = 0u; i < kept; i++) {
            c = c + probs[i];
            if (c >= top_p) {
                kept = i + 1u;
                break;
            }
        }
    }
    float total = 0.0f;
    for (u32 i = 0u; i < kept; i++) {
        total = total + probs[i];
    }
    if (!(total > 0.0f)) {
        *out = order[0];
        return;
    }
    float target = IN_AS(float, uniform)[row] * total;
    float c = 0.0f;
    for (u32 i = 0u; i < kept; i++) {
        c = c + probs[i];
        if (c > target) {
            *out = order[i];
            return;
        }
    }
    *out = order[kept - 1u];
}
