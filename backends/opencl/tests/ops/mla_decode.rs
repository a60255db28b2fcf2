use concord_ops::MlaDecode;

use crate::harness::{check, opencl, Data, Out, Rng, ACTS};

/// Tokens, heads, nope/rope/value widths, latent rank, cached keys, query positions.
struct Case {
    t: usize,
    n: usize,
    dn: usize,
    dr: usize,
    dv: usize,
    r: usize,
    s: usize,
    pos: Vec<u32>,
}

#[test]
fn mla_decode_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(10);
    let cases = [
        Case {
            t: 1,
            n: 2,
            dn: 5,
            dr: 3,
            dv: 4,
            r: 9,
            s: 6,
            pos: vec![5],
        },
        Case {
            t: 2,
            n: 4,
            dn: 128,
            dr: 64,
            dv: 128,
            r: 512,
            s: 33,
            pos: vec![20, 32],
        },
        Case {
            t: 1,
            n: 1,
            dn: 3,
            dr: 2,
            dv: 2,
            r: 130,
            s: 1,
            pos: vec![0],
        },
        // More than one block of keys; positions past the cache.
        Case {
            t: 3,
            n: 2,
            dn: 17,
            dr: 4,
            dv: 9,
            r: 200,
            s: 140,
            pos: vec![139, 7, 1000],
        },
    ];
    for Case {
        t,
        n,
        dn,
        dr,
        dv,
        r,
        s,
        pos,
    } in cases
    {
        for act in ACTS {
            for w_dt in ACTS {
                for out in ACTS {
                    let q = rng.vals(t * n * (dn + dr), 1.0);
                    let q_pe = rng.vals(t * n * dr, 1.0);
                    let w = rng.vals(n * (dn + dv) * r, 0.2);
                    let latent = rng.vals(s * r, 1.0);
                    let k_pe = rng.vals(s * dr, 1.0);
                    check(
                        &format!("mla_decode t={t} n={n} dn={dn} dr={dr} dv={dv} r={r} s={s} {act}/{w_dt}->{out}"),
                        MlaDecode {
                            nope_dim: dn,
                            v_dim: dv,
                            scale: 0.0721,
                            out,
                        },
                        &[
                            Data::act(act, &[t, n, dn + dr], &q),
                            Data::act(act, &[t, n, dr], &q_pe),
                            Data::act(w_dt, &[n * (dn + dv), r], &w),
                            Data::act(act, &[s, r], &latent),
                            Data::act(act, &[s, dr], &k_pe),
                            Data::u32(&[t], &pos),
                        ],
                        &[Out::new(out, &[t, n, dv])],
                    );
                }
            }
        }
    }
}
