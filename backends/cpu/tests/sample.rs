//! sample: greedy ties, top-k = 1, hand-computed distributions under a fixed uniform.
mod common;

use common::*;
use concord_ops::Sample;

fn sample(op: Sample, logits: &[f32], v: usize, uniform: &[f32]) -> Vec<u32> {
    let be = backend();
    let b = uniform.len();
    run1(
        &be,
        op,
        &[&f32s(&be, &[b, v], logits), &f32s(&be, &[b], uniform)],
    )
    .u32()
}

fn greedy(v: usize) -> Sample {
    Sample {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        valid_vocab: v,
    }
}

#[test]
fn greedy_ties_go_to_the_lower_id() {
    assert_eq!(sample(greedy(4), &[1.0, 3.0, 3.0, 2.0], 4, &[0.5]), vec![1]);
    assert_eq!(
        sample(greedy(3), &[f32::NAN, 1.0, f32::NAN], 3, &[0.5]),
        vec![1]
    );
    assert_eq!(sample(greedy(2), &[f32::NAN, f32::NAN], 2, &[0.5]), vec![0]);
    // Ids at or above valid_vocab never win.
    assert_eq!(sample(greedy(2), &[1.0, 2.0, 5.0], 3, &[0.5]), vec![1]);
    // −∞ everywhere but one.
    assert_eq!(
        sample(
            greedy(3),
            &[f32::NEG_INFINITY, -1e30, f32::NEG_INFINITY],
            3,
            &[0.5]
        ),
        vec![1]
    );
}

#[test]
fn top_k_one_equals_greedy() {
    let mut rng = Rng::new(80);
    let (b, v) = (6, 1000);
    let logits: Vec<f32> = (0..b * v).map(|_| rng.uniform(-5.0, 5.0)).collect();
    let uniform: Vec<f32> = (0..b).map(|_| rng.uniform(0.0, 1.0)).collect();
    let want = sample(greedy(v), &logits, v, &uniform);
    for temperature in [0.2, 1.0, 3.0] {
        let op = Sample {
            temperature,
            top_k: 1,
            top_p: 1.0,
            min_p: 0.0,
            valid_vocab: v,
        };
        assert_eq!(sample(op, &logits, v, &uniform), want);
    }
}

/// ln of a distribution [0.1, 0.2, 0.3, 0.4]: sorted ids 3, 2, 1, 0 with cumulative
/// probabilities 0.4, 0.7, 0.9, 1.0.
fn logits() -> Vec<f32> {
    [0.1f32, 0.2, 0.3, 0.4].iter().map(|p| p.ln()).collect()
}

fn at(temperature: f32, top_k: usize, top_p: f32, uniform: &[f32]) -> Vec<u32> {
    let b = uniform.len();
    let l: Vec<f32> = (0..b).flat_map(|_| logits()).collect();
    sample(
        Sample {
            temperature,
            top_k,
            top_p,
            min_p: 0.0,
            valid_vocab: 4,
        },
        &l,
        4,
        uniform,
    )
}

#[test]
fn fixed_uniform_picks_from_the_cdf() {
    // Full distribution: intervals [0, .4) → 3, [.4, .7) → 2, [.7, .9) → 1, [.9, 1) → 0.
    assert_eq!(
        at(1.0, 0, 1.0, &[0.05, 0.5, 0.8, 0.95, 0.0]),
        vec![3, 2, 1, 0, 3]
    );
    // top_p 0.6 keeps {3, 2} (0.4 < 0.6 ≤ 0.7); total 0.7: target u·0.7.
    assert_eq!(at(1.0, 0, 0.6, &[0.5, 0.9]), vec![3, 2]);
    // top_k 3 renormalises to [4/9, 3/9, 2/9]: cumulative .444, .778, 1.
    assert_eq!(at(1.0, 3, 1.0, &[0.4, 0.7, 0.8]), vec![3, 2, 1]);
    // Temperature 2: p ∝ sqrt([.1, .2, .3, .4]) = [.163, .230, .282, .325];
    // cumulative in sorted order .325, .607, .837, 1.
    assert_eq!(at(2.0, 0, 1.0, &[0.3, 0.5, 0.7, 0.9]), vec![3, 2, 1, 0]);
}

#[test]
fn nan_logits_are_never_sampled() {
    let l = [f32::NAN, 0.0, f32::NAN, 0.0];
    let op = Sample {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        valid_vocab: 4,
    };
    assert_eq!(sample(op.clone(), &l, 4, &[0.25]), vec![1]);
    assert_eq!(sample(op, &l, 4, &[0.75]), vec![3]);
}

/// The greedy id by a direct scan: highest non-NaN logit, ties → lower id (all NaN → 0).
fn argmax_oracle(logits: &[f32]) -> u32 {
    let mut best: Option<usize> = None;
    for (i, &l) in logits.iter().enumerate() {
        if !l.is_nan() && best.is_none_or(|b| l > logits[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0) as u32
}

#[test]
fn tiny_temperatures_are_greedy() {
    let rows: [&[f32]; 7] = [
        &[0.5, 1.0, -2.0, 0.75],
        &[3.0, 7.0, 7.0, -1.0],          // tie at the top → lower id
        &[-5.0, -3.0, -3.0, -4.0],       // all negative, tie
        &[1e30, -1e30, 1e30, 0.0],       // large magnitude, tie
        &[-1e30, -1e30, -2e30, -1e30],   // large negative, tie
        &[3.0e38, -3.0e38, 2.9e38, 0.0], // the difference overflows
        &[f32::NAN, 2.0, f32::NEG_INFINITY, 2.0],
    ];
    for temperature in [1e-45, 1e-40, 1e-38, 1e-37, 1e-30, 1e-6] {
        for logits in rows {
            let v = logits.len();
            let want = argmax_oracle(logits);
            for top_k in [0, 2] {
                let op = Sample {
                    temperature,
                    top_k,
                    top_p: 1.0,
                    min_p: 0.0,
                    valid_vocab: v,
                };
                for u in [0.0, 0.3, 0.6, 0.99999994] {
                    assert_eq!(
                        sample(op.clone(), logits, v, &[u]),
                        vec![want],
                        "T={temperature:e} logits={logits:?} k={top_k} u={u}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_greedy_threshold_is_1e_minus_5() {
    // Exactly at the threshold the op samples: two equal logits split the mass.
    let t = f32::from_bits(0x3727_C5AC);
    assert_eq!(t, Sample::GREEDY_BELOW);
    let op = |temperature| Sample {
        temperature,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        valid_vocab: 2,
    };
    assert_eq!(sample(op(t), &[1.0, 1.0], 2, &[0.75]), vec![1]);
    let below = f32::from_bits(0x3727_C5AB);
    assert_eq!(sample(op(below), &[1.0, 1.0], 2, &[0.75]), vec![0]);
}

#[test]
fn infinite_top_logit_is_greedy() {
    let op = Sample {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        valid_vocab: 4,
    };
    let l = [0.0, f32::INFINITY, 5.0, f32::INFINITY];
    for u in [0.0, 0.5, 0.99] {
        assert_eq!(sample(op.clone(), &l, 4, &[u]), vec![1]);
    }
    // Every logit −∞: the lowest id.
    let l = [f32::NEG_INFINITY; 4];
    assert_eq!(sample(op, &l, 4, &[0.7]), vec![0]);
}

#[test]
fn large_logits_sample_without_overflow() {
    // logits/T alone would be +∞ for both ids; (l − max)/T is [0, 0]: p = [1/2, 1/2].
    let op = Sample {
        temperature: 0.5,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        valid_vocab: 3,
    };
    let l = [3.0e38, 3.0e38, -3.0e38];
    assert_eq!(sample(op.clone(), &l, 3, &[0.25]), vec![0]);
    assert_eq!(sample(op, &l, 3, &[0.75]), vec![1]);
}
