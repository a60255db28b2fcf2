//! `--precision bf16` and `--precision fp8` against the fixture references
//! (docs/numerics.md §Tolerances): bf16 within BF16 tolerance of transformers' float32 logits on
//! every fixture; fp8 against the independent W8A8 reference of the FP8 checkpoint.

use concord_runtime::{GenerateParams, LogitRows, Precision};
use concord_tests::{
    fixture_models, fixtures_dir, load_cpu, max_abs, max_abs_diff, prefill_logits, prompts,
    read_references,
};

/// Per-position bound of bf16 mode against transformers float32: 0.025·max|logit| + 0.025.
/// Measured (2026-12-03, every fixture and prompt, positions whose routing agrees): worst
/// 0.108 on fp8_block_scaled (max|logit| 7.2, bound 0.205 — 1.9×), 0.087 elsewhere (bounds
/// 0.12–0.14, ≥ 1.4×). docs/numerics.md §9's looser 0.05·max + 0.05 is the contract for any
/// model; this is what these fixtures achieve, so a misplaced BF16 rounding point (errors of a
/// few percent) fails here.
fn bf16_tolerance(reference: &[f64]) -> f64 {
    0.025 * max_abs(reference) + 0.025
}

/// Positions over [`bf16_tolerance`] summed over every fixture and prompt. A router whose
/// top-k margin is below BF16's resolution picks another expert there: measured 4 such
/// positions (3 in v3_grouped_routing prompt 0 at 0.87–2.4, 1 in v2_group_limited prompt 0 at
/// 0.30), all far above the ordinary error; 2× that is allowed.
const BF16_ROUTER_FLIP_POSITIONS: usize = 8;

/// bf16 and fp8 modes against the FP8 fixture's independent torch references of the same
/// arithmetic (`logits_bf16`, `logits_w8a8`): both quantize and round at the same points, only
/// the summation order differs. Measured max |Δ| 1.43e-6 (bf16) and 1.91e-6 (fp8), i.e. 3–4
/// f32 ulps of logits in [4, 8) (ulp 4.8e-7); the bound is 4× the worst. A reassociated FP8
/// block product (`b·(xs·ws)` for `(b·xs)·ws`, docs/numerics.md §6) is a 1-ulp change that
/// BF16 activations absorb in this fixture; the op-level test
/// `block_fp8_matmul_partial_blocks` (backends/cpu/tests/fp8.rs) pins that order bit for bit.
const SAME_ARITHMETIC_ATOL: f64 = 8e-6;

#[test]
fn bf16_mode_stays_within_bf16_tolerance_of_transformers_f32() {
    let mut flips = 0;
    for dir in fixture_models() {
        let refs = read_references(&dir);
        let model = load_cpu(&dir, Some(Precision::Bf16));
        for (i, ids) in prompts(&refs) {
            let want = &refs[&format!("logits.{i}")].values;
            let got = prefill_logits(&model, &ids);
            let vocab = model.config().vocab_size;
            let tol = bf16_tolerance(want);
            // Per position: a router whose top-k margin is below BF16's resolution can pick
            // another expert at a few positions (the fixtures record margins down to 6e-4);
            // those positions are counted and bounded (per prompt and in total), every other
            // one must be within tolerance.
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
            flips += outside;
        }
    }
    println!("bf16: {flips} positions over tolerance in all fixtures");
    assert!(
        flips <= BF16_ROUTER_FLIP_POSITIONS,
        "{flips} positions over the bf16 tolerance (router flips measured: 4)"
    );
}

#[test]
fn bf16_mode_matches_the_independent_bf16_reference_of_the_fp8_checkpoint() {
    let dir = fixtures_dir().join("fp8_block_scaled");
    let refs = read_references(&dir);
    let model = load_cpu(&dir, Some(Precision::Bf16));
    for (i, ids) in prompts(&refs) {
        let want = &refs[&format!("logits_bf16.{i}")].values;
        let diff = max_abs_diff(&prefill_logits(&model, &ids), want);
        let tol = SAME_ARITHMETIC_ATOL;
        println!("bf16 vs bf16 reference, prompt {i}: max |Δ| {diff:.3e} (tolerance {tol:.1e})");
        assert!(diff <= tol, "prompt {i}: max |Δ| {diff} > {tol}");
    }
}

#[test]
fn fp8_checkpoint_runs_fp8_by_default_and_matches_the_w8a8_reference() {
    let dir = fixtures_dir().join("fp8_block_scaled");
    let refs = read_references(&dir);
    let model = load_cpu(&dir, None);
    assert_eq!(
        model.precision(),
        Precision::Fp8,
        "an FP8 checkpoint's native precision is fp8"
    );
    for (i, ids) in prompts(&refs) {
        let want = &refs[&format!("logits_w8a8.{i}")].values;
        let diff = max_abs_diff(&prefill_logits(&model, &ids), want);
        let tol = SAME_ARITHMETIC_ATOL;
        println!("fp8 vs W8A8 reference, prompt {i}: max |Δ| {diff:.3e} (tolerance {tol:.1e})");
        assert!(diff <= tol, "prompt {i}: max |Δ| {diff} > {tol}");
        // Generation decodes every new token alone in the absorbed MLA form (docs/numerics.md
        // §6), so the oracle is the reference generating through a latent cache the same way.
        let greedy = refs[&format!("greedy_w8a8_absorbed.{i}")].ids();
        let params = GenerateParams {
            max_new_tokens: greedy.len(),
            stop_at_eos: false,
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
    let model = load_cpu(&dir, None);
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
    let model = load_cpu(&dir, Some(Precision::Fp8));
    for (i, ids) in prompts(&refs) {
        let want = &refs[&format!("logits.{i}")].values;
        let diff = max_abs_diff(&prefill_logits(&model, &ids), want);
        // Weights and activations both carry e4m3's 2^-4 relative step: allow 0.15·max + 0.15
        // (0.80 here). Measured 0.283 and 0.255 (2026-12-03): the bound is 2.9× the worst; a
        // quantization error that is not there (fp8 mode silently running bf16) is caught by
        // the W8A8 test above, this one bounds the at-load quantizer.
        let tol = 0.15 * max_abs(want) + 0.15;
        println!("fp8-at-load prompt {i}: max |Δ| {diff:.4} (tolerance {tol:.4})");
        assert!(diff <= tol, "prompt {i}: max |Δ| {diff} > {tol}");
    }
}
