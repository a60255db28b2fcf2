//! Penalties and min-p against an independent oracle: `tools/fixtures/sampling_reference.py`
//! (f64, vLLM's definitions, standard-library Python) wrote `tests/fixtures/sampling/cases.json`
//! — small logits, token histories and settings with the penalised logits and the
//! distribution to draw from. Checked here: the `Penalize` op's logits, the host mirror of the
//! distribution (speculative decoding's), the `Sample` op's draws (chi-square at 1e-4 per case,
//! and never an id the oracle gives probability 0), and `Model::sample_after` drawing the
//! same ids as the ops for the same uniforms.

use std::sync::Arc;

use concord_core::numerics::philox::sampling_uniform;
use concord_core::DType;
use concord_ops::{Backend, Sample, TensorDesc};
use concord_runtime::speculative::TokenDistribution;
use concord_runtime::{Executor, GenerateParams, TokenHistory};
use serde_json::Value;

/// Draws per case for the chi-square test.
const DRAWS: usize = 20_000;
/// A category needs this many expected draws; rarer ones are pooled.
const MIN_EXPECTED: f64 = 5.0;

struct Case {
    name: String,
    logits: Vec<f32>,
    prompt: Vec<u32>,
    output: Vec<u32>,
    params: GenerateParams,
    penalised: Vec<f64>,
    distribution: Vec<f64>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn cases() -> Vec<Case> {
    let path = concord_tests::fixtures_dir().join("sampling/cases.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let f = |k: &str| c[k].as_f64().unwrap() as f32;
            Case {
                name: c["name"].as_str().unwrap().to_owned(),
                logits: floats(&c["logits"]).into_iter().map(|x| x as f32).collect(),
                prompt: ids(&c["prompt"]),
                output: ids(&c["output"]),
                params: GenerateParams {
                    temperature: f("temperature"),
                    top_k: c["top_k"].as_u64().unwrap() as usize,
                    top_p: f("top_p"),
                    min_p: f("min_p"),
                    repetition_penalty: f("repetition_penalty"),
                    frequency_penalty: f("frequency_penalty"),
                    presence_penalty: f("presence_penalty"),
                    seed: 11,
                    ..GenerateParams::default()
                },
                penalised: floats(&c["penalised"]),
                distribution: c["distribution"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|pair| pair[1].as_f64().unwrap())
                    .collect(),
            }
        })
        .collect()
}

fn executor() -> Executor {
    let backend: Arc<dyn Backend> = concord_runtime::open_backend("cpu").unwrap();
    Executor::new(backend)
}

/// `rows` copies of the case's logits through `Penalize` (when a penalty is set).
fn penalised_rows(exec: &Executor, case: &Case, rows: usize) -> concord_runtime::DeviceTensor {
    let v = case.logits.len();
    let tiled: Vec<f32> = (0..rows).flat_map(|_| case.logits.clone()).collect();
    let logits = exec.upload_f32(&[rows, v], &tiled).unwrap();
    let entries = TokenHistory::with_output(&case.prompt, &case.output).entries();
    let flat: Vec<u8> = (0..rows)
        .flat_map(|_| entries.iter().flatten().flat_map(|x| x.to_le_bytes()))
        .collect();
    let seen = exec
        .upload(TensorDesc::new(DType::U32, [rows, entries.len(), 3]), &flat)
        .unwrap();
    exec.apply1(case.params.penalties(), &[logits.arg(), seen.arg()])
        .unwrap()
}

#[test]
fn penalised_logits_match_the_oracle() {
    let exec = executor();
    for case in cases() {
        let got = exec
            .read_f32(&penalised_rows(&exec, &case, 1).arg())
            .unwrap();
        for (i, (&g, &want)) in got.iter().zip(&case.penalised).enumerate() {
            // f32 arithmetic against f64: a few ulps of values of order 1.
            assert!(
                (g as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{}: id {i}: {g} vs oracle {want}",
                case.name
            );
        }
    }
}

#[test]
fn host_distribution_matches_the_oracle() {
    let exec = executor();
    for case in cases() {
        let logits = exec
            .read_f32(&penalised_rows(&exec, &case, 1).arg())
            .unwrap();
        let d = TokenDistribution::new(&logits, &case.params);
        for (i, &want) in case.distribution.iter().enumerate() {
            let got = d.prob(i as u32);
            assert!(
                (got - want).abs() <= 1e-5,
                "{}: id {i}: {got} vs oracle {want}",
                case.name
            );
        }
    }
}

/// Upper 1e-4 quantile of chi-square with `dof` degrees of freedom (Wilson–Hilferty).
fn chi_square_critical(dof: usize) -> f64 {
    const Z: f64 = 3.719_016; // standard normal upper 1e-4 quantile
    let k = dof as f64;
    k * (1.0 - 2.0 / (9.0 * k) + Z * (2.0 / (9.0 * k)).sqrt()).powi(3)
}

#[test]
fn sampled_frequencies_follow_the_oracle_distribution() {
    let exec = executor();
    for case in cases() {
        let v = case.logits.len();
        let logits = penalised_rows(&exec, &case, DRAWS);
        let uniforms: Vec<f32> = (0..DRAWS as u64)
            .map(|i| sampling_uniform(case.params.seed, i, 0))
            .collect();
        let uniform = exec.upload_f32(&[DRAWS], &uniforms).unwrap();
        let op = Sample {
            temperature: case.params.temperature,
            top_k: case.params.top_k,
            top_p: case.params.top_p,
            min_p: case.params.min_p,
            valid_vocab: v,
        };
        let drawn = exec
            .read_u32(
                &exec
                    .apply1(op, &[logits.arg(), uniform.arg()])
                    .unwrap()
                    .arg(),
            )
            .unwrap();
        let mut counts = vec![0u64; v];
        for &id in &drawn {
            counts[id as usize] += 1;
        }
        let (mut stat, mut categories) = (0.0f64, 0usize);
        let (mut pooled_observed, mut pooled_expected) = (0.0f64, 0.0f64);
        for (i, &p) in case.distribution.iter().enumerate() {
            if p == 0.0 {
                assert_eq!(counts[i], 0, "{}: id {i} has probability 0", case.name);
                continue;
            }
            let expected = p * DRAWS as f64;
            if expected < MIN_EXPECTED {
                pooled_observed += counts[i] as f64;
                pooled_expected += expected;
                continue;
            }
            stat += (counts[i] as f64 - expected).powi(2) / expected;
            categories += 1;
        }
        if pooled_expected > 0.0 {
            stat += (pooled_observed - pooled_expected).powi(2) / pooled_expected.max(1.0);
            categories += 1;
        }
        if categories < 2 {
            continue; // one possible id (greedy): the zero-probability check is the test
        }
        let critical = chi_square_critical(categories - 1);
        assert!(
            stat < critical,
            "{}: chi-square {stat:.1} ≥ {critical:.1} ({} categories); counts {counts:?}, \
             oracle {:?}",
            case.name,
            categories,
            case.distribution
        );
    }
}

#[test]
fn model_sample_after_draws_what_the_ops_draw() {
    let model = concord_tests::load_cpu(&concord_runtime::demo_model_dir(), None);
    let exec = executor();
    const STEPS: usize = 64;
    for case in cases() {
        let v = case.logits.len();
        let logits = penalised_rows(&exec, &case, STEPS);
        let uniforms: Vec<f32> = (0..STEPS as u64)
            .map(|i| sampling_uniform(case.params.seed, i, 0))
            .collect();
        let uniform = exec.upload_f32(&[STEPS], &uniforms).unwrap();
        let op = Sample {
            temperature: case.params.temperature,
            top_k: case.params.top_k,
            top_p: case.params.top_p,
            min_p: case.params.min_p,
            valid_vocab: v,
        };
        let want = exec
            .read_u32(
                &exec
                    .apply1(op, &[logits.arg(), uniform.arg()])
                    .unwrap()
                    .arg(),
            )
            .unwrap();
        let history = TokenHistory::with_output(&case.prompt, &case.output);
        for (step, &w) in want.iter().enumerate() {
            let got = model
                .sample_after(&case.logits, &case.params, step as u64, &history)
                .unwrap();
            assert_eq!(got, w, "{}: step {step}", case.name);
        }
    }
}

/// Greedy generation with penalties on the demo model against a loop written here: the
/// model's logits, penalised in f64 from the definition (prompt ∪ output for repetition,
/// output counts for frequency and presence), argmax (ties → lower id).
#[test]
fn greedy_generation_applies_penalties_to_prompt_and_output() {
    use concord_runtime::LogitRows;
    let model = concord_tests::load_cpu(&concord_runtime::demo_model_dir(), None);
    // A repetitive prompt: plain greedy decoding repeats its ids, so the repetition penalty
    // on prompt ids decides the first tokens.
    let prompt = concord_runtime::text::Tokenizer::from_dir(&concord_runtime::demo_model_dir())
        .unwrap()
        .encode("the sea, the sea, the sea, the sea, the", true)
        .unwrap();
    let (r, f, p) = (3.0f64, 2.0f64, 2.0f64);
    let params = GenerateParams {
        max_new_tokens: 24,
        repetition_penalty: r as f32,
        frequency_penalty: f as f32,
        presence_penalty: p as f32,
        ..GenerateParams::default()
    };
    let got: Vec<u32> = model
        .generate(&prompt, params.clone())
        .unwrap()
        .map(|t| t.unwrap())
        .collect();

    let mut seq = model.new_sequence(prompt.len() + 24).unwrap();
    let mut feed = prompt.clone();
    let mut output: Vec<u32> = Vec::new();
    for _ in 0..24 {
        let logits = model
            .forward(&mut [&mut seq], &[&feed], LogitRows::Last)
            .unwrap()
            .per_sequence
            .swap_remove(0);
        let penalised: Vec<f64> = logits
            .iter()
            .enumerate()
            .map(|(id, &l)| {
                let id = id as u32;
                let count = output.iter().filter(|&&t| t == id).count() as f64;
                let mut l = l as f64;
                if count > 0.0 || prompt.contains(&id) {
                    l = if l > 0.0 { l / r } else { l * r };
                }
                if count > 0.0 {
                    l = l - f * count - p;
                }
                l
            })
            .collect();
        let mut best = 0;
        for (i, &l) in penalised.iter().enumerate() {
            if l > penalised[best] {
                best = i;
            }
        }
        output.push(best as u32);
        feed = vec![best as u32];
    }
    assert_eq!(got, output);
    // The penalties matter here: plain greedy decoding differs.
    let plain: Vec<u32> = model
        .generate(
            &prompt,
            GenerateParams {
                max_new_tokens: 24,
                ..GenerateParams::default()
            },
        )
        .unwrap()
        .map(|t| t.unwrap())
        .collect();
    assert_ne!(plain, output);
}
