/* moe_route: expert selection per token — logits F32 [T,E] (+ bias F32 [E] for noaux_tc) ->
 * (ids U32 [T,K], weights F32 [T,K]). One work-item per token over scratch sigma [T,E] and
 * group scores [T,G].
 * Scores sigma = sigmoid(z) or softmax(z); selection score sel = sigma + bias (noaux_tc) or
 * sigma; group score = best + second best sel (noaux_tc) or best sel (group_limited_greedy);
 * the topk_group best groups are kept (greedy keeps all); the top_k best experts of the kept
 * groups, best first. "a before b": higher value first, equal values -> lower index, NaN after
 * every number. Weights w = sigma[e]; with norm and top_k > 1 w /= (sum in rank order from
 * +0.0) + 1e-20; then w *= routed_scaling_factor. */

#define ROUTE_SIGMOID 0u
#define ROUTE_SOFTMAX 1u
#define ROUTE_NOAUX_TC 0u
#define ROUTE_GREEDY 1u
#define ROUTE_GROUP_LIMITED_GREEDY 2u
/* 1e-20 rounded to f32. */
#define ROUTE_NORM_EPS BITS_F32(0x1E3CE508u)

/* Whether (va, ia) ranks before (vb, ib). */
FN int route_before(float va, u32 ia, float vb, u32 ib) {
    int na = is_nan_f32(va);
    int nb = is_nan_f32(vb);
    if (na && nb) {
        return ia < ib;
    }
    if (na) {
        return 0;
    }
    if (nb) {
        return 1;
    }
    if (va > vb) {
        return 1;
    }
    if (va < vb) {
        return 0;
    }
    return ia < ib;
}

FN float route_sel(GLOBAL const float *sigma, GLOBAL const float *bias, u32 has_bias, u32 e) {
    return has_bias ? sigma[e] + bias[e] : sigma[e];
}

KERNEL moe_route(IN_TENSOR(logits), IN_TENSOR(bias), u32 has_bias, OUT_TENSOR(ids),
                 OUT_TENSOR(weights), GLOBAL float *sigma_scratch, GLOBAL float *group_scratch,
                 u32 tokens, u32 experts, u32 scoring, u32 method, u32 n_group, u32 topk_group,
                 u32 top_k, u32 norm_topk_prob, float routed_scaling_factor) {
    u64 t = GLOBAL_ID();
    if (t >= tokens) {
        return;
    }
    GLOBAL const float *z = IN_AS(float, logits) + t * experts;
    GLOBAL const float *bias = IN_AS(float, bias);
    GLOBAL float *sigma = sigma_scratch + t * experts;
    GLOBAL float *gs = group_scratch + t * n_group;
    GLOBAL u32 *out_ids = OUT_AS(u32, ids) + t * top_k;
    GLOBAL float *out_w = OUT_AS(float, weights) + t * top_k;

    if (scoring == ROUTE_SIGMOID) {
        for (u32 e = 0u; e < experts; e++) {
            sigma[e] = sigmoid_f32(z[e]);
        }
    } else {
        for (u32 e = 0u; e < experts; e++) {
            sigma[e] = z[e];
        }
        softmax_in_place(sigma, experts);
    }

    u32 size = method == ROUTE_GREEDY ? experts : experts / n_group;
    if (method != ROUTE_GREEDY) {
        for (u32 g = 0u; g < n_group; g++) {
            u32 e0 = g * size;
            u32 best = e0;
            for (u32 e = e0 + 1u; e < e0 + size; e++) {
                if (route_before(route_sel(sigma, bias, has_bias, e), e,
                                 route_sel(sigma, bias, has_bias, best), best)) {
                    best = e;
                }
            }
            float score = route_sel(sigma, bias, has_bias, best);
            if (method == ROUTE_NOAUX_TC) {
                u32 second = experts;
                for (u32 e = e0; e < e0 + size; e++) {
                    if (e == best) {
                        continue;
                    }
                    if (second == experts ||
                        route_before(route_sel(sigma, bias, has_bias, e), e,
                                     route_sel(sigma, bias, has_bias, second), second)) {
                        second = e;
                    }
                }
                score = score + route_sel(sigma, bias, has_bias, second);
            }
            gs[g] = score;
        }
    }

    /* Selection sort in rank order: each pick is the best candidate ranked after the last. */
    u32 prev = experts;
    for (u32 r = 0u; r < top_k; r++) {
        u32 best = experts;
        for (u32 e = 0u; e < experts; e++) {
            if (method != ROUTE_GREEDY) {
                /* Kept iff fewer than topk_group groups rank before e's group. */
                u32 g = e / size;
                u32 ahead = 0u;
                for (u32 o = 0u; o < n_group; o++) {
                    if (route_before(gs[o], o, gs[g], g)) {
                        ahead++;
                    }
                }
                if (ahead >= topk_group) {
                    continue;
                }
            }
            float v = route_sel(sigma, bias, has_bias, e);
            if (prev != experts &&
                !route_before(route_sel(sigma, bias, has_bias, prev), prev, v, e)) {
                continue;
            }
            if (best == experts || route_before(v, e, route_sel(sigma, bias, has_bias, best), best)) {
                best = e;
            }
        }
        if (best == experts) {
            /* Unreachable: shape inference guarantees top_k candidates. */
            break;
        }
        out_ids[r] = best;
        out_w[r] = sigma[best];
        prev = best;
    }

    if (norm_topk_prob && top_k > 1u) {
        float s = 0.0f;
        for (u32 r = 0u; r < top_k; r++) {
            s = s + out_w[r];
        }
        float denom = s + ROUTE_NORM_EPS;
        for (u32 r = 0u; r < top_k; r++) {
            out_w[r] = out_w[r] / denom;
        }
    }
    for (u32 r = 0u; r < top_k; r++) {
        out_w[r] = out_w[r] * routed_scaling_factor;
    }
}
