//! The canonical reduction order (docs/numerics.md §4 Reduction).
//!
//! A sum of n f32 terms t(0..n) is evaluated as:
//!
//! 1. blocks of [`REDUCE_BLOCK`] = 128 consecutive indices (the last may be partial);
//! 2. inside a block starting at k0, [`REDUCE_LANES`] = 16 lanes start at +0.0 and lane j adds
//!    t(k0+j), t(k0+j+16), … in increasing order: `lane[j] = lane[j] + t(k)`;
//! 3. the lanes combine by the fixed tree `for s in [8, 4, 2, 1] { for j in 0..s
//!    { lane[j] = lane[j] + lane[j+s] } }`; the block total is `lane[0]`;
//! 4. `total = +0.0`, then `total = total + block_total` for each block in order.
//!
//! n = 0 gives +0.0, and because every accumulator starts at +0.0 the result is never −0.0.
//! Each term is one rounded f32 value (a product `a·b` is rounded before it is added).
//!
//! [`canonical_sum`] is the slow, literal definition; [`dot`], [`sum`] and [`sum_of_squares`]
//! are the same order arranged so the compiler vectorises it (16-wide chunks into a `[f32; 16]`
//! accumulator) and are pinned to it bit for bit by the tests.

/// Consecutive terms per block.
pub const REDUCE_BLOCK: usize = 128;
/// Lane accumulators per block.
pub const REDUCE_LANES: usize = 16;

const _: () = assert!(REDUCE_BLOCK == 8 * REDUCE_LANES);

/// The fixed lane tree: `lane[j] = lane[j] + lane[j+s]` for s = 8, 4, 2, 1; returns `lane[0]`.
#[inline(always)]
fn lane_tree(lane: &mut [f32; REDUCE_LANES]) -> f32 {
    for s in [8, 4, 2, 1] {
        for j in 0..s {
            lane[j] += lane[j + s];
        }
    }
    lane[0]
}

/// Total of one block of `n ≤ 128` terms `term(0..n)`: 16 lanes, then the tree (steps 2–3,
/// without the final `+0.0 + …`). This is also the per-block partial sum of the block-FP8
/// matmul (docs/numerics.md §6).
///
/// # Panics
/// If `n > REDUCE_BLOCK`.
pub fn canonical_block_sum(n: usize, term: impl Fn(usize) -> f32) -> f32 {
    assert!(
        n <= REDUCE_BLOCK,
        "canonical_block_sum: {n} terms exceed one block of {REDUCE_BLOCK}"
    );
    let mut lane = [0.0f32; REDUCE_LANES];
    for (j, acc) in lane.iter_mut().enumerate() {
        let mut k = j;
        while k < n {
            *acc += term(k);
            k += REDUCE_LANES;
        }
    }
    lane_tree(&mut lane)
}

/// The canonical sum of `term(0..n)`, written literally from the definition.
pub fn canonical_sum(n: usize, term: impl Fn(usize) -> f32) -> f32 {
    let mut total = 0.0f32;
    let mut k0 = 0;
    while k0 < n {
        let len = REDUCE_BLOCK.min(n - k0);
        total += canonical_block_sum(len, |k| term(k0 + k));
        k0 += len;
    }
    total
}

/// The canonical order over two equally long slices with the term `term(a[k], b[k])`,
/// arranged for auto-vectorisation.
#[inline(always)]
fn reduce_pairs(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut total = 0.0f32;
    for (ba, bb) in a.chunks(REDUCE_BLOCK).zip(b.chunks(REDUCE_BLOCK)) {
        let mut lane = [0.0f32; REDUCE_LANES];
        let mut ca = ba.chunks_exact(REDUCE_LANES);
        let mut cb = bb.chunks_exact(REDUCE_LANES);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for j in 0..REDUCE_LANES {
                lane[j] += term(x[j], y[j]);
            }
        }
        for (acc, (x, y)) in lane
            .iter_mut()
            .zip(ca.remainder().iter().zip(cb.remainder()))
        {
            *acc += term(*x, *y);
        }
        total += lane_tree(&mut lane);
    }
    total
}

/// Canonical dot product `Σ_k a[k]·b[k]`, each product rounded to f32 before it is added
/// (no fused multiply-add).
///
/// # Panics
/// If `a.len() != b.len()`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: operand lengths differ");
    reduce_pairs(a, b, |x, y| x * y)
}

/// Canonical sum `Σ_k x[k]`.
pub fn sum(x: &[f32]) -> f32 {
    reduce_pairs(x, x, |v, _| v)
}

/// Canonical sum of squares `Σ_k x[k]·x[k]`, each square rounded to f32 before it is added.
pub fn sum_of_squares(x: &[f32]) -> f32 {
    reduce_pairs(x, x, |v, _| v * v)
}

/// Maximum in index order: `m = −∞`; for each v, `if v > m || v.is_nan() { m = v }`.
///
/// Any NaN gives NaN (once m is NaN no comparison replaces it); equal values keep the first
/// (so of −0.0 and +0.0 the earlier one wins); an empty slice gives −∞.
pub fn max(x: &[f32]) -> f32 {
    let mut m = f32::NEG_INFINITY;
    for &v in x {
        if v > m || v.is_nan() {
            m = v;
        }
    }
    m
}
