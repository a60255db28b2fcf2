//! `--precision bf16` and `--precision fp8` against the fixture references
//! (docs/numerics.md §Tolerances): bf16 within BF16 tolerance of transformers' float32 logits on
//! every fixture; fp8 against the independent W8A8 reference of the FP8 checkpoint.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use concord_runtime::{GenerateParams, LoadOptions, LogitRows, Model, Precision};
use concord_tests::{
    fixture_models, fixtures_dir, max_abs, max_abs_diff, read_references, Reference,
};

fn load(dir: &Path, precision: Option<Precision>) -> Model {
    let backend = concord_runtime::open_backend("cpu").expect("cpu backend");
    let options = LoadOptions {
        precision,
        max_positions: None,
    };
    Model::load(dir, Arc::clone(&backend), &options, &mut |_, _| true)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn prompts(refs: &HashMap<String, Reference>) -> Vec<(usize, Vec<u32>)> {
    let mut out: Vec<(usize, Vec<u32>)> = refs
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("input_ids.")
                .map(|i| (i.parse().unwrap(), v.ids()))
        })
        .collect();
    out.sort();
    out
}

fn logits(model: &Model, ids: &[u32]) -> Vec<f32> {
    let mut seq = model.new_sequence(ids.len()).unwrap();
    model
        .forward(&mut [&mut seq], &[ids], LogitRows::All)
        .unwrap()
        .per_sequence
        .remove(0)
}

/// BF16 tolerance of docs/numerics.md: 0.05·max|logit| + 0.05.
fn bf16_tolerance(reference: &[f64]) -> f64 {
    0.05 * max_abs(reference) + 0.05
}

/// FP8 vs the W8A8 reference: 0.01·max|logit| + 0.01.
fn fp8_tolerance(reference: &[f64]) -> f64 {
    0.01 * max_abs(reference) + 0.01
}

#[test]
fn bf16_mode_stays_within_bf16_tolerance_of_transformers_f32() {
    for dir in fixture_models() {
        let refs = read_references(&dir);
        let model = load(&dir, Some(Precision::Bf16));
        for (i, ids) in prompts(&refs) {
            let want = &refs[&format!("logits.{i}")].values;
            let got = logits(&model, &ids);
            let vocab = model.config().vocab_size;
            let tol = bf16_tolerance(want);
            // Per position: a router whose top-k margin is below BF16's resolution can pick
            // another expert at a few positions (the fixtures record margins down to 6e-4);
            // those positions are counted and bounded, every other one must be within tolerance.
            let mut outside = 0;
            let rows = ids.len();
            for p in 0..rows {
                let d = max_abs_diff(
                    &got[p * vocab..(p + 1) * vocab],
                    &want[p * vocab..(p + 1) * vocab],
                );
                if d > tol {
                    outside += 1;
                }
            }
            let diff = max_abs_diff(&got, want);
            println!(
                "{} prompt {i}: bf16 max |Δ| {diff:.4}, {outside}/{rows} positions over {tol:.4}",
                dir.display()
            );
            assert!(
                outside * 8 <= rows,
                "{} prompt {i}: {outside}/{rows} positions over {tol}",
                dir.display()
            );
        }
    }
}

#[test]
fn bf16_mode_matches_the_independent_bf16_reference_of_the_fp8_checkpoint() {
    let dir = fixtures_dir().join("fp8_block_scaled");
    let refs = read_references(&dir);
    let model = load(&dir, Some(Precision::Bf16));
    for (i, ids) in prompts(&refs) {
        let want = &refs[&format!("logits_bf16.{i}")].values;
        let diff = max_abs_diff(&logits(&model, &ids), want);
        let tol = fp8_tolerance(want);
        println!("bf16 vs bf16 reference, prompt {i}: max |Δ| {diff:.5} (tolerance {tol:.4})");
        assert!(diff <= tol, "prompt {i}: max |Δ| {diff} > {tol}");
    }
}

#[test]
fn fp8_checkpoint_runs_fp8_by_default_and_matches_the_w8a8_reference() {
    let dir = fixtures_dir().join("fp8_block_scaled");
    let refs = read_references(&dir);
    let model = load(&dir, None);
    assert_eq!(
        model.precision(),
        Precision::Fp8,
        "an FP8 checkpoint's native precision is fp8"
    );
    for (i, ids) in prompts(&refs) {
        let want = &refs[&format!("logits_w8a8.{i}")].values;
        let diff = max_abs_diff(&logits(&model, &ids), want);
        let tol = fp8_tolerance(want);
        println!("fp8 vs W8A8 reference, prompt {i}: max |Δ| {diff:.5} (tolerance {tol:.4})");
        assert!(diff <= tol, "prompt {i}: max |Δ| {diff} > {tol}");
        // Generation decodes every new token alone in the absorbed MLA form (docs/numerics.md
        // §6), so the oracle is the reference generating through a latent cache the same way.
        let greedy = refs[&format!("greedy_w8a8_absorbed.{i}")].ids();
        let params = GenerateParams {
            max_new_tokens: greedy.len(),
            ..GenerateParams::default()
        };
        let got: Vec<u32> = model
            .generate(&ids, params)
            .unwrap()
            .map(|t| t.unwrap())
            .collect();
        assert_eq!(
            got, greedy,
            "prompt {i}: fp8 greedy continuation vs W8A8 reference"
        );
    }
}

/// fp8 decode (absorbed MLA over the latent cache, kv_b_proj dequantized to BF16) step by step
/// against the reference's decode logits, fed the reference's own tokens.
#[test]
fn fp8_decode_steps_match_the_absorbed_w8a8_reference() {
    let dir = fixtures_dir().join("fp8_block_scaled");
    let refs = read_references(&dir);
    let model = load(&dir, None);
    for (i, ids) in prompts(&refs) {
        let greedy = refs[&format!("greedy_w8a8_absorbed.{i}")].ids();
        let want = &refs[&format!("decode_logits_w8a8.{i}")];
        let vocab = want.shape[1];
        let mut seq = model.new_sequence(ids.len() + greedy.len()).unwrap();
        model
            .forward(&mut [&mut seq], &[&ids], LogitRows::Last)
            .unwrap();
        for (step, token) in greedy[..greedy.len() - 1].iter().enumerate() {
            let got = model
                .forward(&mut [&mut seq], &[&[*token]], LogitRows::Last)
                .unwrap()
                .per_sequence
                .remove(0);
            let row = &want.values[step * vocab..(step + 1) * vocab];
            let diff = max_abs_diff(&got, row);
            // Measured: at most 9.6e-7 over both prompts' 30 steps — the f32 order of the
            // final lm_head dots differs from torch's. 4x that; the naive-form decode this
            // replaced is off by orders of magnitude more (and picks other tokens).
            let tol = 4e-6;
            println!("fp8 decode step {step}, prompt {i}: max |Δ| {diff:e} (tolerance {tol:.4})");
            assert!(
                diff <= tol,
                "prompt {i} step {step}: max |Δ| {diff} > {tol}"
            );
        }
    }
}

#[test]
fn fp8_mode_on_a_bf16_checkpoint_quantizes_at_load_within_quantization_error() {
    let dir = fixtures_dir().join("dense_only_v3");
    let refs = read_references(&dir);
    let model = load(&dir, Some(Precision::Fp8));
    for (i, ids) in prompts(&refs) {
        let want = &refs[&format!("logits.{i}")].values;
        let diff = max_abs_diff(&logits(&model, &ids), want);
        // Weights and activations both carry e4m3's 2^-4 relative step: allow 0.15·max + 0.15.
        let tol = 0.15 * max_abs(want) + 0.15;
        println!("fp8-at-load prompt {i}: max |Δ| {diff:.4} (tolerance {tol:.4})");
        assert!(diff <= tol, "prompt {i}: max |Δ| {diff} > {tol}");
    }
}
