//! The canonical reduction order (docs/numerics.md §Reduction) in the shapes the kernels need.
//!
//! `concord_core::numerics::reduce` is the one definition of the order; these are the same
//! order written with explicit 4-wide vectors (`wide::f32x4`: separate multiply and add,
//! never fused; lanes 4q..4q+3 in vector q): a dot whose second operand is BF16 (the
//! weight), a dot over a concatenated operand, and many column sums at once. Every one is
//! pinned bit for bit to `reduce::canonical_sum` (or `canonical_block_sum`) over the same terms by the tests in
//! tests/canonical.rs.
//!
//! The order: blocks of 128 consecutive terms; inside a block 16 lanes, lane j adding terms
//! j, j+16, … in order starting from +0.0; then `lane[j] += lane[j+s]` for s = 8, 4, 2, 1;
//! block totals added in order starting from +0.0. Each term is one rounded f32 product.
use concord_core::numerics::reduce::{REDUCE_BLOCK, REDUCE_LANES};

use wide::f32x4;

use crate::elem::Elem;

const BLOCK: usize = REDUCE_BLOCK;
const LANES: usize = REDUCE_LANES;
const _: () = assert!(BLOCK == 128 && LANES == 16);

/// The 16 lanes as four 4-wide vectors: `v[q]` holds lanes 4q .. 4q+3.
type Lanes = [f32x4; 4];

/// The fixed lane tree `lane[j] += lane[j+s]` for s = 8, 4, 2, 1, on the vector form:
/// s = 8 is `v0 += v2, v1 += v3`, s = 4 is `v0 += v1`, then two scalar steps.
#[inline(always)]
fn tree(v: Lanes) -> f32 {
    let v0 = (v[0] + v[2]) + (v[1] + v[3]);
    let l = v0.to_array();
    let (l0, l1) = (l[0] + l[2], l[1] + l[3]);
    l0 + l1
}

/// Adds `a[i]·b[i]` for a remainder of fewer than 16 terms to lanes 0 .. len.
#[inline(always)]
fn add_tail<B: Elem>(v: &mut Lanes, a: &[f32], b: &[B]) {
    if a.is_empty() {
        return;
    }
    let mut l = [0.0f32; LANES];
    for q in 0..4 {
        l[q * 4..q * 4 + 4].copy_from_slice(&v[q].to_array());
    }
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        l[j] += *x * y.f();
    }
    for q in 0..4 {
        v[q] = f32x4::from(<[f32; 4]>::try_from(&l[q * 4..q * 4 + 4]).expect("4 lanes"));
    }
}

#[inline(always)]
fn load(a: &[f32]) -> f32x4 {
    f32x4::from(<[f32; 4]>::try_from(&a[..4]).expect("4 values"))
}

/// The within-block part of the canonical dot: `a.len() == b.len() ≤ 128` terms `a[i]·b[i]`
/// in 16 lanes, then the tree (no final `+0.0 + …`) — `reduce::canonical_block_sum`.
#[inline(always)]
pub(crate) fn block_dot<B: Elem>(a: &[f32], b: &[B]) -> f32 {
    debug_assert!(a.len() == b.len() && a.len() <= BLOCK);
    let mut v: Lanes = [f32x4::ZERO; 4];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for q in 0..4 {
            v[q] += load(&x[q * 4..]) * B::load4(&y[q * 4..]);
        }
    }
    add_tail(&mut v, ca.remainder(), cb.remainder());
    tree(v)
}

/// Canonical dot `Σ a[i]·b[i]` (`a.len() == b.len()`), b widened exactly to f32.
#[inline]
pub(crate) fn dot<B: Elem>(a: &[f32], b: &[B]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut total = 0.0f32;
    for (x, y) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        total += block_dot(x, y);
    }
    total
}

/// Two canonical dots sharing their second operand: `(dot(a0, b), dot(a1, b))`, each with
/// exactly the additions of [`dot`]; `b` is loaded and widened once for both.
#[inline]
pub(crate) fn dot2<B: Elem>(a0: &[f32], a1: &[f32], b: &[B]) -> (f32, f32) {
    debug_assert!(a0.len() == b.len() && a1.len() == b.len());
    let (mut t0, mut t1) = (0.0f32, 0.0f32);
    for ((x0, x1), y) in a0.chunks(BLOCK).zip(a1.chunks(BLOCK)).zip(b.chunks(BLOCK)) {
        let mut v0: Lanes = [f32x4::ZERO; 4];
        let mut v1: Lanes = [f32x4::ZERO; 4];
        let mut c0 = x0.chunks_exact(LANES);
        let mut c1 = x1.chunks_exact(LANES);
        let mut cy = y.chunks_exact(LANES);
        for ((p, q), w) in (&mut c0).zip(&mut c1).zip(&mut cy) {
            for r in 0..4 {
                let wv = B::load4(&w[r * 4..]);
                v0[r] += load(&p[r * 4..]) * wv;
                v1[r] += load(&q[r * 4..]) * wv;
            }
        }
        add_tail(&mut v0, c0.remainder(), cy.remainder());
        add_tail(&mut v1, c1.remainder(), cy.remainder());
        t0 += tree(v0);
        t1 += tree(v1);
    }
    (t0, t1)
}

/// Canonical dot of `a` with the concatenation `[b0 ; b1]`, as one vector of `a.len()` terms.
pub(crate) fn dot_concat<B: Elem, C: Elem>(a: &[f32], b0: &[B], b1: &[C]) -> f32 {
    debug_assert_eq!(a.len(), b0.len() + b1.len());
    let split = b0.len();
    let mut total = 0.0f32;
    let mut buf = [0.0f32; BLOCK];
    for (bi, x) in a.chunks(BLOCK).enumerate() {
        let start = bi * BLOCK;
        let end = start + x.len();
        let block = if end <= split {
            block_dot(x, &b0[start..end])
        } else if start >= split {
            block_dot(x, &b1[start - split..end - split])
        } else {
            let head = split - start;
            for (d, v) in buf[..head].iter_mut().zip(&b0[start..]) {
                *d = v.f();
            }
            for (d, v) in buf[head..x.len()].iter_mut().zip(&b1[..end - split]) {
                *d = v.f();
            }
            block_dot(x, &buf[..x.len()])
        };
        total += block;
    }
    total
}

/// Column sums in canonical order: `out[c] = Σ_u coef[u] · row(u)[c]` for every column c of
/// rows of `out.len()` elements, term u being the rounded product `coef[u]·row(u)[c]`.
///
/// All columns advance together (the inner loop runs along the row, so it vectorises);
/// each column's additions are exactly those of `canonical_sum` over its terms.
pub(crate) fn weighted_rows<'a, B: Elem>(
    coef: &[f32],
    row: impl Fn(usize) -> &'a [B],
    out: &mut [f32],
) {
    let width = out.len();
    out.fill(0.0);
    if width == 0 {
        return;
    }
    let mut lanes = vec![0.0f32; LANES * width];
    for (bi, block) in coef.chunks(BLOCK).enumerate() {
        lanes.fill(0.0);
        for (i, &p) in block.iter().enumerate() {
            let l = i % LANES;
            let lane = &mut lanes[l * width..(l + 1) * width];
            let r = &row(bi * BLOCK + i)[..width];
            for (acc, v) in lane.iter_mut().zip(r) {
                *acc += p * v.f();
            }
        }
        for s in [8, 4, 2, 1] {
            for j in 0..s {
                let (lo, hi) = lanes.split_at_mut((j + s) * width);
                let dst = &mut lo[j * width..(j + 1) * width];
                for (d, v) in dst.iter_mut().zip(&hi[..width]) {
                    *d += *v;
                }
            }
        }
        for (o, v) in out.iter_mut().zip(&lanes[..width]) {
            *o += *v;
        }
    }
}
