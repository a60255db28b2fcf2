//! mla_prefill and mla_decode bit for bit against a plain scalar attention written from
//! docs/numerics.md §4 (128-term blocks, 16 lanes, the fixed tree, blocks added in order from
//! +0.0, each term one rounded product), over odd sizes: heads 1/3/18, Dn 16/128,
//! Dr 0/8/64, 1..300 keys across the 128 boundary, masked keys poisoned with NaN.
mod common;

use common::*;
use concord_core::convert::round_to_bf16;
use concord_core::numerics::math::softmax_in_place;
use concord_core::DType;
use concord_ops::{MlaDecode, MlaPrefill};

/// The contract's sum of `terms`: concord_core's literal reference (docs/numerics.md §4).
fn canonical_sum(terms: &[f32]) -> f32 {
    concord_core::numerics::reduce::canonical_sum(terms.len(), |i| terms[i])
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let terms: Vec<f32> = a.iter().zip(b).map(|(x, y)| x * y).collect();
    canonical_sum(&terms)
}

fn store(v: f32, out: DType) -> f32 {
    if out == DType::BF16 {
        round_to_bf16(v)
    } else {
        v
    }
}

/// Shapes of one case: tokens, heads, Dn, Dr, Dv, latent rank, cached keys.
#[derive(Clone, Copy, Debug)]
struct Dims {
    t: usize,
    n: usize,
    dn: usize,
    dr: usize,
    dv: usize,
    r: usize,
    s: usize,
}

struct Case {
    d: Dims,
    q: Vec<f32>,
    q_pe: Vec<f32>,
    kv: Vec<f32>,
    k_pe: Vec<f32>,
    w: Vec<f32>,
    latent: Vec<f32>,
    pos: Vec<u32>,
}

impl Case {
    /// Random data; cache rows past every query's last visible key are NaN (unwritten).
    fn new(seed: u64, d: Dims, pos: &[u32]) -> Case {
        let mut rng = Rng::new(seed);
        let seen = pos
            .iter()
            .map(|&p| (p as usize + 1).min(d.s))
            .max()
            .unwrap_or(0);
        let poison = |v: &mut Vec<f32>, row: usize| v[seen * row..].fill(f32::NAN);
        let bf = |v: Vec<f32>| -> Vec<f32> { v.into_iter().map(round_to_bf16).collect() };
        let mut kv = bf(rng.vec(d.s * d.n * (d.dn + d.dv)));
        poison(&mut kv, d.n * (d.dn + d.dv));
        let mut k_pe = bf(rng.vec(d.s * d.dr));
        poison(&mut k_pe, d.dr);
        let mut latent = bf(rng.vec(d.s * d.r));
        poison(&mut latent, d.r);
        Case {
            d,
            q: rng.vec(d.t * d.n * (d.dn + d.dr)),
            q_pe: rng.vec(d.t * d.n * d.dr),
            kv,
            k_pe,
            w: bf(rng
                .vec(d.n * (d.dn + d.dv) * d.r)
                .into_iter()
                .map(|v| v * 0.3)
                .collect()),
            latent,
            pos: pos.to_vec(),
        }
    }

    fn visible(&self, t: usize) -> usize {
        (self.pos[t] as usize + 1).min(self.d.s)
    }

    fn prefill(&self, scale: f32, out: DType) -> Vec<u32> {
        let (be, d) = (backend(), self.d);
        let ins = [
            f32s(&be, &[d.t, d.n, d.dn + d.dr], &self.q),
            f32s(&be, &[d.t, d.n, d.dr], &self.q_pe),
            bf16s(&be, &[d.s, d.n, d.dn + d.dv], &self.kv),
            bf16s(&be, &[d.s, d.dr], &self.k_pe),
            u32s(&be, &[d.t], &self.pos),
        ];
        let refs: Vec<&T> = ins.iter().collect();
        let op = MlaPrefill {
            nope_dim: d.dn,
            scale,
            out,
        };
        run1(&be, op, &refs).bits()
    }

    /// Spec §3.2 in the contract's order, one query and head at a time.
    fn prefill_reference(&self, scale: f32, out: DType) -> Vec<u32> {
        let d = self.d;
        let kw = d.dn + d.dv;
        let mut res = Vec::new();
        for t in 0..d.t {
            for h in 0..d.n {
                let row = t * d.n + h;
                let mut q = self.q[row * (d.dn + d.dr)..][..d.dn].to_vec();
                q.extend_from_slice(&self.q_pe[row * d.dr..(row + 1) * d.dr]);
                let kv = |u: usize| &self.kv[(u * d.n + h) * kw..(u * d.n + h + 1) * kw];
                let mut p: Vec<f32> = (0..self.visible(t))
                    .map(|u| {
                        let mut k = kv(u)[..d.dn].to_vec();
                        k.extend_from_slice(&self.k_pe[u * d.dr..(u + 1) * d.dr]);
                        dot(&q, &k) * scale
                    })
                    .collect();
                softmax_in_place(&mut p);
                for j in 0..d.dv {
                    let terms: Vec<f32> = p
                        .iter()
                        .enumerate()
                        .map(|(u, pu)| pu * kv(u)[d.dn + j])
                        .collect();
                    res.push(store(canonical_sum(&terms), out).to_bits());
                }
            }
        }
        res
    }

    fn decode(&self, scale: f32, out: DType) -> Vec<u32> {
        let (be, d) = (backend(), self.d);
        let ins = [
            f32s(&be, &[d.t, d.n, d.dn + d.dr], &self.q),
            f32s(&be, &[d.t, d.n, d.dr], &self.q_pe),
            bf16s(&be, &[d.n * (d.dn + d.dv), d.r], &self.w),
            bf16s(&be, &[d.s, d.r], &self.latent),
            bf16s(&be, &[d.s, d.dr], &self.k_pe),
            u32s(&be, &[d.t], &self.pos),
        ];
        let refs: Vec<&T> = ins.iter().collect();
        let op = MlaDecode {
            nope_dim: d.dn,
            v_dim: d.dv,
            scale,
            out,
        };
        run1(&be, op, &refs).bits()
    }

    /// Spec §3.5 in the contract's order, one query and head at a time.
    fn decode_reference(&self, scale: f32, out: DType) -> Vec<u32> {
        let d = self.d;
        let w = |row: usize| &self.w[row * d.r..(row + 1) * d.r];
        let lat = |u: usize| &self.latent[u * d.r..(u + 1) * d.r];
        let mut res = Vec::new();
        for t in 0..d.t {
            for h in 0..d.n {
                let row = t * d.n + h;
                let base = h * (d.dn + d.dv);
                let q_nope = &self.q[row * (d.dn + d.dr)..][..d.dn];
                let q_pe = &self.q_pe[row * d.dr..(row + 1) * d.dr];
                let q_lat: Vec<f32> = (0..d.r)
                    .map(|c| {
                        let terms: Vec<f32> =
                            (0..d.dn).map(|j| w(base + j)[c] * q_nope[j]).collect();
                        canonical_sum(&terms)
                    })
                    .collect();
                let mut p: Vec<f32> = (0..self.visible(t))
                    .map(|u| {
                        let pe = dot(q_pe, &self.k_pe[u * d.dr..(u + 1) * d.dr]);
                        (dot(&q_lat, lat(u)) + pe) * scale
                    })
                    .collect();
                softmax_in_place(&mut p);
                let o_lat: Vec<f32> = (0..d.r)
                    .map(|c| {
                        let terms: Vec<f32> =
                            p.iter().enumerate().map(|(u, pu)| pu * lat(u)[c]).collect();
                        canonical_sum(&terms)
                    })
                    .collect();
                for j in 0..d.dv {
                    res.push(store(dot(&o_lat, w(base + d.dn + j)), out).to_bits());
                }
            }
        }
        res
    }
}

/// (seed, dims, positions): every kernel path — one key, keys across the 128 boundary,
/// a group of queries with different key counts, a missing query in the last group,
/// positions past the cache, Dr = 0, Dn + Dr not a multiple of 16, single rows split into
/// parallel passes with Dn over two blocks and Dv not a multiple of 4.
fn cases() -> Vec<(u64, Dims, Vec<u32>)> {
    let dims = |t, n, dn, dr, dv, r, s| Dims {
        t,
        n,
        dn,
        dr,
        dv,
        r,
        s,
    };
    vec![
        (1, dims(1, 1, 16, 0, 16, 16, 1), vec![0]),
        (
            2,
            dims(7, 3, 16, 8, 24, 73, 130),
            vec![0, 1, 127, 128, 129, 60, 5],
        ),
        (
            3,
            dims(9, 18, 128, 64, 128, 73, 300),
            vec![290, 291, 292, 293, 294, 299, 3, 140, 128],
        ),
        (
            4,
            dims(5, 3, 128, 8, 40, 33, 257),
            vec![255, 256, 400, 127, 0],
        ),
        (
            5,
            dims(6, 1, 16, 64, 8, 129, 129),
            vec![128, 127, 126, 0, 64, 1000],
        ),
        (6, dims(2, 18, 16, 8, 20, 24, 200), vec![150, 151]),
        // Split single rows: q_nope over two 128-blocks, Dv not a multiple of 4.
        (7, dims(2, 5, 160, 8, 131, 37, 400), vec![399, 200]),
        (8, dims(1, 3, 200, 16, 5, 19, 900), vec![899]),
    ]
}

#[test]
fn mla_prefill_follows_the_contract_order() {
    for (seed, d, pos) in cases() {
        let c = Case::new(seed, d, &pos);
        let scale = 1.0 / ((d.dn + d.dr) as f32).sqrt();
        for out in [DType::F32, DType::BF16] {
            assert_eq!(
                c.prefill(scale, out),
                c.prefill_reference(scale, out),
                "mla_prefill {d:?} positions {pos:?} out {out}"
            );
        }
    }
}

#[test]
fn mla_decode_follows_the_contract_order() {
    for (seed, d, pos) in cases() {
        let c = Case::new(seed, d, &pos);
        let scale = 1.0 / ((d.dn + d.dr) as f32).sqrt();
        for out in [DType::F32, DType::BF16] {
            assert_eq!(
                c.decode(scale, out),
                c.decode_reference(scale, out),
                "mla_decode {d:?} positions {pos:?} out {out}"
            );
        }
    }
}

#[test]
fn mla_decode_long_cache_follows_the_contract_order() {
    // Several parallel key ranges and value blocks (1100 cached keys, all visible).
    let d = Dims {
        t: 1,
        n: 18,
        dn: 16,
        dr: 8,
        dv: 16,
        r: 73,
        s: 1100,
    };
    let c = Case::new(7, d, &[1099]);
    assert_eq!(
        c.decode(0.25, DType::F32),
        c.decode_reference(0.25, DType::F32)
    );
}

#[test]
fn mla_decode_rows_of_a_group_see_only_their_own_keys() {
    // Rows decoded together (a verification's draft rows): a key only the later row sees
    // holds ∞, so it must not reach the earlier row's scores, softmax or value sums.
    let d = Dims {
        t: 3,
        n: 2,
        dn: 16,
        dr: 8,
        dv: 16,
        r: 24,
        s: 40,
    };
    // Rows 0 and 1 share a group on one or two threads (groups of ⌈3 / threads⌉ ≤ 4 rows);
    // rows 0 and 2 end before the key.
    let mut c = Case::new(12, d, &[4, 30, 5]);
    c.latent[10 * d.r..11 * d.r].fill(f32::INFINITY);
    let row = d.n * d.dv;
    for out in [DType::F32, DType::BF16] {
        let got = c.decode(0.25, out);
        let want = c.decode_reference(0.25, out);
        for r in [0, 2] {
            let (g, w) = (&got[r * row..(r + 1) * row], &want[r * row..(r + 1) * row]);
            assert_eq!(g, w, "row {r}, out {out}");
            assert!(g.iter().all(|b| f32::from_bits(*b).is_finite()));
        }
    }
}
