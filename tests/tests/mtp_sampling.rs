//! Speculative sampling keeps plain sampling's distribution: the joint distribution of the first
//! tokens generated with MTP drafts is compared with the exact one — the product of the main
//! model's per-step distributions, computed here in f64 from its logits (softmax of the top-k
//! logits over the temperature; an oracle independent of the sampler) — by a chi-square
//! goodness-of-fit test at significance 1e-3.

use std::collections::HashMap;

use concord_runtime::{GenerateParams, LogitRows, Model, SpeculativeMtp};
use concord_tests::load_cpu_with;

const TEMPERATURE: f32 = 2.0;
const TOP_K: usize = 20;
/// Generations per test (seeds 0..RUNS).
const RUNS: u64 = 3000;
/// A category needs this many expected draws (the usual chi-square rule of thumb).
const MIN_EXPECTED: f64 = 5.0;

/// The logits plain generation samples the token after `prompt + prefix` from: the prompt as
/// one prefill, then each prefix token as one decode step (the same forms, so the same bits —
/// a near-tie at the top-k boundary must rank as the sampler ranks it).
fn generation_logits(model: &Model, prompt: &[u32], prefix: &[u32]) -> Vec<f32> {
    let mut seq = model.new_sequence(prompt.len() + prefix.len()).unwrap();
    let mut logits = model
        .forward(&mut [&mut seq], &[prompt], LogitRows::Last)
        .unwrap();
    for &t in prefix {
        logits = model
            .forward(&mut [&mut seq], &[&[t]], LogitRows::Last)
            .unwrap();
    }
    logits.per_sequence.swap_remove(0)
}

/// The distribution plain sampling draws the next token from after `prompt + prefix`: softmax
/// of the TOP_K largest logits divided by TEMPERATURE (ties to the lower id), in f64.
fn next_token_distribution(model: &Model, prompt: &[u32], prefix: &[u32]) -> Vec<(u32, f64)> {
    let last = generation_logits(model, prompt, prefix);
    let vocab = model.config().vocab_size;
    let mut order: Vec<u32> = (0..vocab as u32).collect();
    order.sort_by(|&a, &b| {
        last[b as usize]
            .total_cmp(&last[a as usize])
            .then(a.cmp(&b))
    });
    order.truncate(TOP_K);
    let top = last[order[0] as usize] as f64;
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((last[i as usize] as f64 - top) / TEMPERATURE as f64).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    order
        .into_iter()
        .zip(weights.into_iter().map(|w| w / total))
        .collect()
}

/// Every continuation of `len` tokens whose exact probability gives at least MIN_EXPECTED
/// draws in RUNS, with that probability (a tree walk over the main model's distributions).
fn frequent_continuations(model: &Model, prompt: &[u32], len: usize) -> HashMap<Vec<u32>, f64> {
    let mut out = HashMap::new();
    let mut stack = vec![(Vec::new(), 1.0f64)];
    while let Some((prefix, p)) = stack.pop() {
        if prefix.len() == len {
            out.insert(prefix, p);
            continue;
        }
        for (t, q) in next_token_distribution(model, prompt, &prefix) {
            if p * q * RUNS as f64 >= MIN_EXPECTED {
                let mut next = prefix.clone();
                next.push(t);
                stack.push((next, p * q));
            }
        }
    }
    out
}

/// Upper 1e-3 quantile of chi-square with `dof` degrees of freedom (Wilson–Hilferty; within a
/// few percent for dof ≥ 3).
fn chi_square_critical(dof: usize) -> f64 {
    const Z: f64 = 3.090_232; // standard normal upper 1e-3 quantile
    let k = dof as f64;
    k * (1.0 - 2.0 / (9.0 * k) + Z * (2.0 / (9.0 * k)).sqrt()).powi(3)
}

/// Chi-square statistic of the first `len` tokens of RUNS seeded speculative generations
/// against the exact distribution, and its critical value.
fn chi_square(draft_tokens: usize, len: usize, text: &str) -> (f64, f64, usize) {
    let dir = concord_runtime::demo_model_dir();
    let model = load_cpu_with(&dir, None, true);
    let prompt = concord_runtime::text::Tokenizer::from_dir(&dir)
        .unwrap()
        .encode(text, true)
        .unwrap();
    let expected = frequent_continuations(&model, &prompt, len);
    let mut observed: HashMap<Vec<u32>, u64> = HashMap::new();
    for seed in 0..RUNS {
        // One token more than counted, so the last counted one is decided by verification
        // (with no room left after it, a round would verify no draft).
        let params = GenerateParams {
            max_new_tokens: len + 1,
            temperature: TEMPERATURE,
            top_k: TOP_K,
            seed,
            speculative: Some(SpeculativeMtp { draft_tokens }),
            stop_at_eos: false,
            ..GenerateParams::default()
        };
        let mut tokens: Vec<u32> = model
            .generate(&prompt, params)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tokens.truncate(len);
        let key = if expected.contains_key(&tokens) {
            tokens
        } else {
            Vec::new()
        };
        *observed.entry(key).or_default() += 1;
    }
    // Categories: each frequent continuation, and everything else lumped together.
    let n = RUNS as f64;
    let rest = 1.0 - expected.values().sum::<f64>();
    let mut stat = 0.0;
    let mut categories = 0;
    for (k, p) in expected.iter().chain(std::iter::once((&Vec::new(), &rest))) {
        let e = n * p;
        if e < 1e-9 {
            continue;
        }
        let o = *observed.get(k).unwrap_or(&0) as f64;
        stat += (o - e) * (o - e) / e;
        categories += 1;
    }
    (stat, chi_square_critical(categories - 1), categories)
}

/// One draft per step: the first token comes from the prefill, the second from accepting or
/// replacing the MTP draft.
#[test]
fn speculative_sampling_keeps_the_distribution_of_two_tokens() {
    let (stat, critical, categories) = chi_square(1, 2, "The quick brown fox");
    eprintln!("chi-square {stat:.1} over {categories} categories, critical {critical:.1}");
    assert!(
        stat < critical,
        "chi-square {stat} ≥ {critical} ({categories} categories)"
    );
}

/// Two drafts per step: the second and third tokens both come through verification, the
/// third after the module was re-applied to its own output.
#[test]
fn speculative_sampling_keeps_the_distribution_of_three_tokens_with_chained_drafts() {
    let (stat, critical, categories) = chi_square(2, 3, "Call me Ishmael.");
    eprintln!("chi-square {stat:.1} over {categories} categories, critical {critical:.1}");
    assert!(
        stat < critical,
        "chi-square {stat} ≥ {critical} ({categories} categories)"
    );
}
