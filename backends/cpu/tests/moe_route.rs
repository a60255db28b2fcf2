//! moe_route on hand-built logits.
mod common;

use common::*;
use concord_core::numerics::math::sigmoid;
use concord_ops::{MoeRoute, RouterMethod, RouterScoring};

fn v3(n_group: usize, topk_group: usize, top_k: usize) -> MoeRoute {
    MoeRoute {
        scoring: RouterScoring::Sigmoid,
        method: RouterMethod::NoauxTc,
        n_group,
        topk_group,
        top_k,
        norm_topk_prob: true,
        routed_scaling_factor: 2.5,
    }
}

fn route(op: MoeRoute, logits: &[f32], e: usize, bias: Option<&[f32]>) -> (Vec<u32>, Vec<f32>) {
    let be = backend();
    let t = logits.len() / e;
    let l = f32s(&be, &[t, e], logits);
    let out = match bias {
        Some(b) => run(&be, op, &[&l, &f32s(&be, &[e], b)]),
        None => run(&be, op, &[&l]),
    }
    .unwrap();
    (out[0].u32(), out[1].f32())
}

#[test]
fn noaux_tc_selects_groups_by_top_two_sum() {
    // Groups of 2: g0 = [5, −5] scores σ(5)+σ(−5) ≈ 1.0, g1 = [2, 2] ≈ 1.76, g2 = [1.5, 1.5]
    // ≈ 1.64, g3 = [0, 0] = 1.0. Keeping 2 groups keeps g1 and g2, so expert 0 — the best
    // single expert — is not eligible; the top 2 are experts 2 and 3 (equal: lower first).
    let logits = [5.0, -5.0, 2.0, 2.0, 1.5, 1.5, 0.0, 0.0];
    let (ids, w) = route(v3(4, 2, 2), &logits, 8, Some(&[0.0; 8]));
    assert_eq!(ids, vec![2, 3]);
    // Equal weights normalise to exactly 0.5 each, × 2.5.
    assert_eq!(w, vec![1.25, 1.25]);
}

#[test]
fn router_tie_breaks_to_lower_index() {
    // All equal: groups 0 and 1 are kept, experts in index order.
    let (ids, _) = route(v3(4, 2, 3), &[0.5; 8], 8, Some(&[0.0; 8]));
    assert_eq!(ids, vec![0, 1, 2]);
    // Greedy over equal scores, and a tie between experts 3 and 6 at the top.
    let greedy = MoeRoute {
        method: RouterMethod::Greedy,
        scoring: RouterScoring::Softmax,
        n_group: 1,
        topk_group: 1,
        ..v3(1, 1, 2)
    };
    let (ids, _) = route(greedy.clone(), &[0.0; 6], 6, None);
    assert_eq!(ids, vec![0, 1]);
    let (ids, _) = route(greedy, &[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0], 7, None);
    assert_eq!(ids, vec![3, 6]);
}

#[test]
fn bias_selects_but_does_not_weigh() {
    // Expert 1 has the lower σ but a bias that lifts it above expert 0.
    let logits = [1.0, 0.5, -3.0, -3.0];
    let bias = [0.0, 0.5, 0.0, 0.0];
    let op = MoeRoute {
        norm_topk_prob: false,
        routed_scaling_factor: 1.0,
        ..v3(1, 1, 2)
    };
    let (ids, w) = route(op, &logits, 4, Some(&bias));
    assert_eq!(ids, vec![1, 0]);
    assert_eq!(w, vec![sigmoid(0.5), sigmoid(1.0)]);
}

#[test]
fn dropped_groups_are_excluded_even_against_negative_scores() {
    // Group 0 holds the best expert (σ(2) ≈ 0.88) but its partner's bias sinks the group;
    // group 1's experts have negative selection scores. Dropped experts count as −∞ (a 0.0
    // fill would pick expert 0 instead).
    let logits = [2.0, 0.0, 0.0, 0.0];
    let bias = [0.0, -5.0, -0.6, -0.7];
    let (ids, _) = route(v3(2, 1, 2), &logits, 4, Some(&bias));
    assert_eq!(ids, vec![2, 3]);
}

#[test]
fn normalised_weights_sum_to_the_scaling_factor() {
    let mut rng = Rng::new(60);
    let (t, e) = (16, 256);
    let logits: Vec<f32> = (0..t * e).map(|_| rng.uniform(-4.0, 4.0)).collect();
    let bias: Vec<f32> = (0..e).map(|_| rng.uniform(-0.1, 0.1)).collect();
    let (ids, w) = route(v3(8, 4, 8), &logits, e, Some(&bias));
    for tok in 0..t {
        let (ids, w) = (&ids[tok * 8..(tok + 1) * 8], &w[tok * 8..(tok + 1) * 8]);
        let s: f64 = w.iter().map(|v| *v as f64).sum();
        assert!((s - 2.5).abs() < 1e-5, "token {tok}: weights sum to {s}");
        let mut groups: Vec<u32> = ids.iter().map(|i| i / 32).collect();
        groups.sort();
        groups.dedup();
        assert!(groups.len() <= 4, "token {tok}: experts span {groups:?}");
        // Rank order: selection scores descending.
        let sel: Vec<f32> = ids
            .iter()
            .map(|&i| sigmoid(logits[tok * e + i as usize]) + bias[i as usize])
            .collect();
        assert!(sel.windows(2).all(|p| p[0] >= p[1]));
        // Weights are σ of the chosen experts, normalised in rank order, × 2.5.
        let sig: Vec<f32> = ids
            .iter()
            .map(|&i| sigmoid(logits[tok * e + i as usize]))
            .collect();
        let mut sum = 0.0f32;
        for v in &sig {
            sum += v;
        }
        for k in 0..8 {
            assert_eq!(w[k], sig[k] / (sum + 1e-20) * 2.5);
        }
    }
}

#[test]
fn greedy_softmax_without_normalisation() {
    // V2-Lite style: weights are the softmax probabilities themselves, × rsf.
    let logits = [1.0f32, 3.0, 2.0, 0.0];
    let op = MoeRoute {
        scoring: RouterScoring::Softmax,
        method: RouterMethod::Greedy,
        n_group: 1,
        topk_group: 1,
        top_k: 2,
        norm_topk_prob: false,
        routed_scaling_factor: 1.0,
    };
    let (ids, w) = route(op, &logits, 4, None);
    assert_eq!(ids, vec![1, 2]);
    let z: f64 = logits.iter().map(|l| (*l as f64).exp()).sum();
    assert_close(
        &w,
        &[3f64.exp() / z, 2f64.exp() / z],
        1e-6,
        0.0,
        "softmax weights",
    );
}

#[test]
fn group_limited_greedy_keeps_groups_by_best_score() {
    // Groups of 2: best scores g0 = 3 (expert 1), g1 = 2.5 (expert 2), g2 = 2.9 (expert 5).
    // Keep 2 groups (g0, g2): top 3 among experts {0, 1, 4, 5} = 1, 5, 4.
    let logits = [0.0f32, 3.0, 2.5, 2.4, 1.0, 2.9];
    let op = MoeRoute {
        scoring: RouterScoring::Softmax,
        method: RouterMethod::GroupLimitedGreedy,
        n_group: 3,
        topk_group: 2,
        top_k: 3,
        norm_topk_prob: false,
        routed_scaling_factor: 16.0,
    };
    let (ids, _) = route(op, &logits, 6, None);
    assert_eq!(ids, vec![1, 5, 4]);
}
