/* moe_experts, fast mode: the Dense BF16 projections as a grouped GEMM on the work-group tiles
 * of common/tile_gemm.h, gathered by expert without a sort. The host takes this path for BF16
 * x, gate, up, down and a BF16 output only; everything else runs the exact kernels, and the
 * combine is always the exact moe_experts_combine.
 *
 * One work-group per (expert e, TILE_N columns of the output): it scans the slot ids in slot
 * order, collects the next TILE_M slots routed to e (moe_gather), stages their rows as the
 * TILE_M-row X tile, multiplies them by e's weight rows in TILE_K slices in increasing order,
 * writes the rows of its collected slots, and goes on with the next TILE_M slots until every
 * slot is scanned. A slot's row sits in whatever tile position the other slots leave it, and
 * its result depends on nothing else: the reduction of every element is the same fixed
 * sequence of slices and MMA steps (deterministic and batch-invariant).
 *
 * gate_up writes h[s, c] = A(silu(A(g)) * A(u)) as the exact kernel does (f32 scratch holding
 * values rounded to A); down stages those h rows as BF16 (exact: they are BF16 values) and
 * writes eo[s, c] = A(h . down_e). An id >= E is reported, first in slot order (as the CPU
 * reports it), by group 0 of gate_up; such slots match no expert and are skipped. */

/* Slots one scan step looks at: one per work-item. */
#define MOE_SCAN TILE_GROUP
/* Words of the scan scratch: a flag per item, the step's hit masks (one bit per item), and the
 * slot at which a full gather resumes. */
#define MOE_MASKS (MOE_SCAN / 32u)
#define MOE_SCAN_WORDS (MOE_SCAN + MOE_MASKS + 1u)

/* Number of set bits of v. */
FN u32 moe_bit_count(u32 v) {
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    v = (v + (v >> 4)) & 0x0F0F0F0Fu;
    return (v * 0x01010101u) >> 24;
}

/* TILE_N-column tiles across `cols` (at least one, so a group exists for every expert). */
FN u32 moe_tiles(u32 cols) {
    u32 t = (cols + TILE_N - 1u) / TILE_N;
    return t > 0u ? t : 1u;
}

/* Reports the first slot (in slot order) whose id is >= experts, as the CPU does. Called by
 * every item of one group; `red` holds TILE_GROUP words. */
FN void moe_check_ids(LOCAL u32 *red, GLOBAL const u32 *ids, u32 slots, u32 experts,
                      GLOBAL u32 *status, u32 item) {
    u32 first = slots;
    for (u32 s = item; s < slots; s += TILE_GROUP) {
        if (ids[s] >= experts) {
            first = s;
            break;
        }
    }
    red[item] = first;
    BARRIER();
    for (u32 step = TILE_GROUP / 2u; step > 0u; step >>= 1) {
        if (item < step && red[item + step] < red[item]) {
            red[item] = red[item + step];
        }
        BARRIER();
    }
    if (item == 0u && red[0] < slots) {
        report_error(status, ERR_MOE_EXPERT_ID, ids[red[0]], experts);
    }
    BARRIER();
}

/* Collects into list[0..n) the next n <= TILE_M slots, in slot order from *cursor, whose id is
 * `expert`, and moves *cursor past the last slot taken (to `slots` once none is left).
 * Called by every item of the group; n and *cursor come out the same in every item. `scan`
 * holds MOE_SCAN_WORDS words. A barrier ends it, so list may be read at once. */
FN u32 moe_gather(LOCAL u32 *list, LOCAL u32 *scan, GLOBAL const u32 *ids, u32 slots,
                  u32 expert, u32 *cursor, u32 item) {
    LOCAL u32 *masks = scan + MOE_SCAN;
    LOCAL u32 *resume = masks + MOE_MASKS;
    u32 n = 0u;
    u32 base = *cursor;
    u32 next = slots;
    u32 over = 0u;
    while (base < slots) {
        u32 s = base + item;
        u32 hit = (s < slots && ids[s] == expert) ? 1u : 0u;
        scan[item] = hit;
        BARRIER();
        if (item < MOE_MASKS) {
            u32 w = 0u;
            for (u32 b = 0u; b < 32u; b++) {
                w |= scan[item * 32u + b] << b;
            }
            masks[item] = w;
        }
        BARRIER();
        /* This item's rank among the step's hits, and the step's total (the same in every
         * item). */
        u32 rank = 0u;
        u32 total = 0u;
        for (u32 q = 0u; q < MOE_MASKS; q++) {
            u32 c = moe_bit_count(masks[q]);
            total += c;
            if (q < item / 32u) {
                rank += c;
            } else if (q == item / 32u) {
                rank += moe_bit_count(masks[q] & ((1u << (item % 32u)) - 1u));
            }
        }
        if (hit && n + rank < TILE_M) {
            list[n + rank] = s;
        }
        if (hit && n + rank == TILE_M) {
            resume[0] = s;
        }
        if (n + total >= TILE_M) {
            over = n + total > TILE_M ? 1u : 0u;
            next = slots - base > MOE_SCAN ? base + MOE_SCAN : slots;
            n = TILE_M;
            break;
        }
        n += total;
        base += MOE_SCAN;
    }
    BARRIER();
    if (over) {
        next = resume[0];
    }
    *cursor = next;
    return n;
}

/* Stages columns [k0, k0 + TILE_K) of the BF16 x rows of the n collected slots (token =
 * slot / top_k) into tile[TILE_M][TILE_LD], zero-padded past n and k. */
FN void moe_stage_x(LOCAL u16 *tile, GLOBAL const u16 *x, LOCAL const u32 *list, u32 n,
                    u32 top_k, u32 k0, u32 k, u32 item) {
    for (u32 e = item; e < TILE_M * TILE_K; e += TILE_GROUP) {
        u32 r = e / TILE_K;
        u32 c = e % TILE_K;
        int inside = r < n && k0 + c < k;
        tile[r * TILE_LD + c] = inside ? x[(u64)(list[r] / top_k) * k + k0 + c] : (u16)0u;
    }
}

/* The same for the f32 h rows of the collected slots, which hold BF16 values: their top 16
 * bits are those values' BF16 bits (exact). */
FN void moe_stage_h(LOCAL u16 *tile, GLOBAL const float *h, LOCAL const u32 *list, u32 n,
                    u32 k0, u32 k, u32 item) {
    for (u32 e = item; e < TILE_M * TILE_K; e += TILE_GROUP) {
        u32 r = e / TILE_K;
        u32 c = e % TILE_K;
        int inside = r < n && k0 + c < k;
        tile[r * TILE_LD + c] =
            inside ? (u16)(F32_BITS(h[(u64)list[r] * k + k0 + c]) >> 16) : (u16)0u;
    }
}

/* h[s, c] = A(silu(A(x . gate_e)) * A(x . up_e)) for every slot s routed to expert e:
 * (E or 1) * moe_tiles(inter) groups of TILE_GROUP items. */
KERNEL moe_experts_gate_up_fast(IN_TENSOR(x), IN_TENSOR(ids), IN_TENSOR(gate), IN_TENSOR(up),
                                GLOBAL float *h_out, u32 out_dt, u32 slots, u32 top_k,
                                u32 experts, u32 hidden, u32 inter, GLOBAL u32 *status) {
    LOCAL_ARRAY(u16, xt, TILE_M * TILE_LD);
    LOCAL_ARRAY(u16, wt, TILE_N * TILE_LD);
    LOCAL_ARRAY(u32, scan, MOE_SCAN_WORDS);
    LOCAL_ARRAY(u32, list, TILE_M);
    u32 item = LOCAL_ID();
    u32 warp = item / WARP_ITEMS;
    u32 lane = item % WARP_ITEMS;
    GLOBAL const u32 *id = IN_AS(u32, ids);
    if (GROUP_ID() == 0u) {
        moe_check_ids(scan, id, slots, experts, status, item);
    }
    u32 tiles = moe_tiles(inter);
    u32 expert = (u32)(GROUP_ID() / tiles);
    u32 n0 = (u32)(GROUP_ID() % tiles) * TILE_N;
    if (expert >= experts) {
        return;
    }
    GLOBAL const u16 *xs = IN_AS(u16, x);
    GLOBAL const u16 *gw = IN_AS(u16, gate) + (u64)expert * inter * hidden;
    GLOBAL const u16 *uw = IN_AS(u16, up) + (u64)expert * inter * hidden;
    u32 cursor = 0u;
    while (cursor < slots) {
        u32 n = moe_gather(list, scan, id, slots, expert, &cursor, item);
        if (n == 0u) {
            break;
        }
        float g[TILE_WARP_N][4];
        float u[TILE_WARP_N][4];
        tile_zero(g);
        tile_zero(u);
        for (u32 k0 = 0u; k0 < hidden; k0 += TILE_K) {
            u32 len = hidden - k0 < TILE_K ? hidden - k0 : TILE_K;
            moe_stage_x(xt, xs, list, n, top_k, k0, hidden, item);
            stage_bf16(wt, gw, n0, inter, k0, hidden, TILE_N, item);
            BARRIER();
            tile_slice_mma(g, xt, wt, len, n, warp, lane);
            BARRIER();
            stage_bf16(wt, uw, n0, inter, k0, hidden, TILE_N, item);
            BARRIER();
            tile_slice_mma(u, xt, wt, len, n, warp, lane);
            BARRIER();
        }
        for (u32 j = 0u; j < TILE_WARP_N; j++) {
            for (u32 q = 0u; q < 4u; q++) {
                u32 row = tile_row(lane, q);
                u32 col = tile_y_col(n0, warp, j, lane, q);
                if (row < n && col < inter) {
                    float gv = round_act(g[j][q], out_dt);
                    float uv = round_act(u[j][q], out_dt);
                    h_out[(u64)list[row] * inter + col] = round_act(silu_f32(gv) * uv, out_dt);
                }
            }
        }
    }
}

/* eo[s, c] = A(h[s] . down_e) for every slot s routed to expert e: E * moe_tiles(hidden)
 * groups of TILE_GROUP items. */
KERNEL moe_experts_down_fast(GLOBAL const float *h, IN_TENSOR(ids), IN_TENSOR(down),
                             GLOBAL float *eo, u32 out_dt, u32 slots, u32 experts, u32 hidden,
                             u32 inter) {
    LOCAL_ARRAY(u16, xt, TILE_M * TILE_LD);
    LOCAL_ARRAY(u16, wt, TILE_N * TILE_LD);
    LOCAL_ARRAY(u32, scan, MOE_SCAN_WORDS);
    LOCAL_ARRAY(u32, list, TILE_M);
    u32 item = LOCAL_ID();
    u32 warp = item / WARP_ITEMS;
    u32 lane = item % WARP_ITEMS;
    GLOBAL const u32 *id = IN_AS(u32, ids);
    u32 tiles = moe_tiles(hidden);
    u32 expert = (u32)(GROUP_ID() / tiles);
    u32 n0 = (u32)(GROUP_ID() % tiles) * TILE_N;
    if (expert >= experts) {
        return;
    }
    GLOBAL const u16 *dw = IN_AS(u16, down) + (u64)expert * hidden * inter;
    u32 cursor = 0u;
    while (cursor < slots) {
        u32 n = moe_gather(list, scan, id, slots, expert, &cursor, item);
        if (n == 0u) {
            break;
        }
        float acc[TILE_WARP_N][4];
        tile_zero(acc);
        for (u32 k0 = 0u; k0 < inter; k0 += TILE_K) {
            moe_stage_h(xt, h, list, n, k0, inter, item);
            stage_bf16(wt, dw, n0, hidden, k0, inter, TILE_N, item);
            BARRIER();
            tile_slice_mma(acc, xt, wt, inter - k0 < TILE_K ? inter - k0 : TILE_K, n, warp, lane);
            BARRIER();
        }
        for (u32 j = 0u; j < TILE_WARP_N; j++) {
            for (u32 q = 0u; q < 4u; q++) {
                u32 row = tile_row(lane, q);
                u32 col = tile_y_col(n0, warp, j, lane, q);
                if (row < n && col < hidden) {
                    eo[(u64)list[row] * hidden + col] = round_act(acc[j][q], out_dt);
                }
            }
        }
    }
}
