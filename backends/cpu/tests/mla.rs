//! mla_prefill against an f64 attention, mla_decode against mla_prefill, causal masking.
mod common;

use common::*;
use concord_core::DType;
use concord_ops::{MlaDecode, MlaPrefill};

struct Case {
    t: usize,
    n: usize,
    dn: usize,
    dr: usize,
    dv: usize,
    r: usize,
    s: usize,
    q: Vec<f32>,
    q_pe: Vec<f32>,
    w: Vec<f32>,
    latent: Vec<f32>,
    k_pe: Vec<f32>,
    pos: Vec<u32>,
}

impl Case {
    fn new(
        seed: u64,
        (t, n, dn, dr, dv, r, s): (usize, usize, usize, usize, usize, usize, usize),
        pos: &[u32],
    ) -> Case {
        let mut rng = Rng::new(seed);
        Case {
            t,
            n,
            dn,
            dr,
            dv,
            r,
            s,
            q: rng.vec(t * n * (dn + dr)),
            q_pe: rng.vec(t * n * dr),
            w: rng.vec(n * (dn + dv) * r).iter().map(|v| v * 0.3).collect(),
            latent: rng.vec(s * r),
            k_pe: rng.vec(s * dr),
            pos: pos.to_vec(),
        }
    }
    /// kv [S, N, Dn+Dv] = W_h · latent(u), computed in f64 and stored as f32.
    fn kv(&self) -> Vec<f32> {
        let mut kv = Vec::new();
        for u in 0..self.s {
            for row in 0..self.n * (self.dn + self.dv) {
                kv.push(dot64(
                    &self.w[row * self.r..(row + 1) * self.r],
                    &self.latent[u * self.r..(u + 1) * self.r],
                ) as f32);
            }
        }
        kv
    }
    fn prefill(&self, kv: &[f32], scale: f32, out: DType) -> Vec<f32> {
        let be = backend();
        let ins = [
            f32s(&be, &[self.t, self.n, self.dn + self.dr], &self.q),
            f32s(&be, &[self.t, self.n, self.dr], &self.q_pe),
            f32s(&be, &[self.s, self.n, self.dn + self.dv], kv),
            f32s(&be, &[self.s, self.dr], &self.k_pe),
            u32s(&be, &[self.t], &self.pos),
        ];
        let refs: Vec<&T> = ins.iter().collect();
        run1(
            &be,
            MlaPrefill {
                nope_dim: self.dn,
                scale,
                out,
            },
            &refs,
        )
        .f32()
    }
    fn decode(&self, latent: &[f32], scale: f32, out: DType) -> Vec<f32> {
        let be = backend();
        let ins = [
            f32s(&be, &[self.t, self.n, self.dn + self.dr], &self.q),
            f32s(&be, &[self.t, self.n, self.dr], &self.q_pe),
            f32s(&be, &[self.n * (self.dn + self.dv), self.r], &self.w),
            f32s(&be, &[self.s, self.r], latent),
            f32s(&be, &[self.s, self.dr], &self.k_pe),
            u32s(&be, &[self.t], &self.pos),
        ];
        let refs: Vec<&T> = ins.iter().collect();
        run1(
            &be,
            MlaDecode {
                nope_dim: self.dn,
                v_dim: self.dv,
                scale,
                out,
            },
            &refs,
        )
        .f32()
    }
    /// Straightforward f64 attention over the explicit kv.
    fn reference(&self, kv: &[f32], scale: f64) -> Vec<f64> {
        let (n, dn, dr, dv) = (self.n, self.dn, self.dr, self.dv);
        let mut out = Vec::new();
        for t in 0..self.t {
            for h in 0..n {
                let q = &self.q[(t * n + h) * (dn + dr)..];
                let qp = &self.q_pe[(t * n + h) * dr..(t * n + h + 1) * dr];
                let keys = (self.pos[t] as usize + 1).min(self.s);
                let scores: Vec<f64> = (0..keys)
                    .map(|u| {
                        let kvr = &kv[(u * n + h) * (dn + dv)..];
                        (dot64(&q[..dn], &kvr[..dn]) + dot64(qp, &self.k_pe[u * dr..(u + 1) * dr]))
                            * scale
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for j in 0..dv {
                    out.push(
                        (0..keys)
                            .map(|u| e[u] / z * kv[(u * n + h) * (dn + dv) + dn + j] as f64)
                            .sum(),
                    );
                }
            }
        }
        out
    }
}

const SMALL: (usize, usize, usize, usize, usize, usize, usize) = (4, 3, 20, 8, 12, 24, 6);

#[test]
fn mla_prefill_matches_f64_attention() {
    let c = Case::new(50, SMALL, &[2, 3, 4, 5]);
    let kv = c.kv();
    let got = c.prefill(&kv, 0.35, DType::F32);
    assert_close(&got, &c.reference(&kv, 0.35), 1e-5, 0.1, "mla_prefill");
    let got16 = c.prefill(&kv, 0.35, DType::BF16);
    assert_close(
        &got16,
        &c.reference(&kv, 0.35),
        2f64.powi(-8),
        0.1,
        "mla_prefill bf16",
    );
}

#[test]
fn mla_decode_agrees_with_prefill() {
    // The absorbed form differs from the explicit one only in summation order (spec §3.5).
    for (seed, dims, pos) in [
        (51, SMALL, vec![2, 3, 4, 5]),
        (52, (2, 2, 128, 64, 128, 512, 9), vec![0, 8]),
        (53, (1, 4, 16, 8, 16, 200, 300), vec![299]),
    ] {
        let c = Case::new(seed, dims, &pos);
        let scale = 1.0 / ((c.dn + c.dr) as f32).sqrt();
        let explicit = c.prefill(&c.kv(), scale, DType::F32);
        let absorbed = c.decode(&c.latent, scale, DType::F32);
        let want: Vec<f64> = explicit.iter().map(|v| *v as f64).collect();
        assert_close(&absorbed, &want, 1e-5, 0.1, "mla_decode vs mla_prefill");
    }
}

#[test]
fn causal_mask_hides_later_keys() {
    // Keys after a query's position (here poisoned with NaN) must not change its output.
    let c = Case::new(54, SMALL, &[0, 1, 2, 3]);
    let kv = c.kv();
    let row = c.n * (c.dn + c.dv);
    let mut kv_poison = kv.clone();
    kv_poison[4 * row..].fill(f32::NAN);
    let mut latent_poison = c.latent.clone();
    latent_poison[4 * c.r..].fill(f32::NAN);
    let a = c.prefill(&kv, 0.2, DType::F32);
    let b = c.prefill(&kv_poison, 0.2, DType::F32);
    assert_eq!(bits(&a), bits(&b));
    let a = c.decode(&c.latent, 0.2, DType::F32);
    let b = c.decode(&latent_poison, 0.2, DType::F32);
    assert_eq!(bits(&a), bits(&b));
    // The first query sees only key 0: its output is exactly v(0).
    let p = c.prefill(&kv, 0.2, DType::F32);
    for h in 0..c.n {
        let v0 = &kv[h * (c.dn + c.dv) + c.dn..(h + 1) * (c.dn + c.dv)];
        assert_eq!(&p[h * c.dv..(h + 1) * c.dv], v0);
    }
}

#[test]
fn position_past_the_cache_sees_every_key() {
    let c = Case::new(55, SMALL, &[5, 100, 7, 6]);
    let kv = c.kv();
    let got = c.prefill(&kv, 0.3, DType::F32);
    // All four queries see the 6 keys; the reference clamps the same way.
    assert_close(&got, &c.reference(&kv, 0.3), 1e-5, 0.1, "clamped positions");
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
