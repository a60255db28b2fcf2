use concord_core::DType;
use concord_ops::{MoeRoute, RouterMethod, RouterScoring};

use crate::harness::{check, opencl, Data, Out, Rng};

#[test]
fn moe_route_matches_cpu() {
    if opencl().is_none() {
        return;
    }
    let mut rng = Rng::new(11);
    let ops = [
        MoeRoute {
            scoring: RouterScoring::Sigmoid,
            method: RouterMethod::NoauxTc,
            n_group: 4,
            topk_group: 2,
            top_k: 4,
            norm_topk_prob: true,
            routed_scaling_factor: 2.5,
        },
        MoeRoute {
            scoring: RouterScoring::Sigmoid,
            method: RouterMethod::NoauxTc,
            n_group: 8,
            topk_group: 4,
            top_k: 8,
            norm_topk_prob: true,
            routed_scaling_factor: 2.5,
        },
        MoeRoute {
            scoring: RouterScoring::Softmax,
            method: RouterMethod::Greedy,
            n_group: 1,
            topk_group: 1,
            top_k: 3,
            norm_topk_prob: false,
            routed_scaling_factor: 1.0,
        },
        MoeRoute {
            scoring: RouterScoring::Softmax,
            method: RouterMethod::GroupLimitedGreedy,
            n_group: 3,
            topk_group: 2,
            top_k: 5,
            norm_topk_prob: true,
            routed_scaling_factor: 16.0,
        },
        MoeRoute {
            scoring: RouterScoring::Sigmoid,
            method: RouterMethod::Greedy,
            n_group: 1,
            topk_group: 1,
            top_k: 1,
            norm_topk_prob: true,
            routed_scaling_factor: 1.0,
        },
    ];
    for (i, op) in ops.into_iter().enumerate() {
        let e = [16, 256, 10, 12, 7][i];
        for t in [1, 5, 33] {
            let mut logits = rng.vals(t * e, 4.0);
            // Ties (equal logits) and NaN logits in some tokens.
            if t > 1 {
                for j in 0..e / 2 {
                    logits[e + j] = 0.5;
                }
                logits[2 * e - 1] = f32::NAN;
            }
            if t > 2 {
                logits[2 * e..3 * e].fill(-1.0);
            }
            let mut inputs = vec![Data::f32(&[t, e], &logits)];
            if op.method == RouterMethod::NoauxTc {
                let bias: Vec<f32> = (0..e)
                    .map(|j| if j % 3 == 0 { 0.0 } else { rng.sym(0.1) })
                    .collect();
                inputs.push(Data::f32(&[e], &bias));
            }
            let k = op.top_k;
            check(
                &format!("moe_route {i} t={t} e={e}"),
                op.clone(),
                &inputs,
                &[Out::new(DType::U32, &[t, k]), Out::new(DType::F32, &[t, k])],
            );
        }
    }
}
