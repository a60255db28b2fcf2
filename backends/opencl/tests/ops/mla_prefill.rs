use concord_ops::MlaPrefill;

use crate::harness::{check, opencl, Data, Out, Rng, ACTS};

/// Tokens, heads, nope/rope/value widths, cached keys, query positions.
struct Case {
    t: usize,
    n: usize,
    dn: usize,
    dr: usize,
    dv: usize,
    s: usize,
    pos: Vec<u32>,
}

#[test]
fn mla_prefill_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(9);
    let cases = [
        Case {
            t: 3,
            n: 2,
            dn: 5,
            dr: 3,
            dv: 4,
            s: 4,
            pos: vec![1, 2, 3],
        },
        Case {
            t: 4,
            n: 3,
            dn: 128,
            dr: 64,
            dv: 128,
            s: 7,
            pos: vec![3, 4, 5, 6],
        },
        Case {
            t: 1,
            n: 1,
            dn: 16,
            dr: 8,
            dv: 16,
            s: 1,
            pos: vec![0],
        },
        // A block straddling nope and rope columns; positions past the cache.
        Case {
            t: 3,
            n: 2,
            dn: 130,
            dr: 6,
            dv: 3,
            s: 200,
            pos: vec![7, 150, 4000],
        },
    ];
    for Case {
        t,
        n,
        dn,
        dr,
        dv,
        s,
        pos,
    } in cases
    {
        for q_dt in ACTS {
            for kv_dt in ACTS {
                for out in ACTS {
                    let q = rng.vals(t * n * (dn + dr), 1.0);
                    let q_pe = rng.vals(t * n * dr, 1.0);
                    let kv = rng.vals(s * n * (dn + dv), 1.0);
                    let k_pe = rng.vals(s * dr, 1.0);
                    check(
                        &format!("mla_prefill t={t} n={n} dn={dn} dr={dr} dv={dv} s={s} {q_dt}/{kv_dt}->{out}"),
                        MlaPrefill {
                            nope_dim: dn,
                            scale: 0.1352,
                            out,
                        },
                        &[
                            Data::act(q_dt, &[t, n, dn + dr], &q),
                            Data::act(q_dt, &[t, n, dr], &q_pe),
                            Data::act(kv_dt, &[s, n, dn + dv], &kv),
                            Data::act(kv_dt, &[s, dr], &k_pe),
                            Data::u32(&[t], &pos),
                        ],
                        &[Out::new(out, &[t, n, dv])],
                    );
                }
            }
        }
    }
}
