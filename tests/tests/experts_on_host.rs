//! `--experts-on host` (runtime/src/model/expert_offload.rs): the model on OpenCL with its
//! routed experts in host RAM, run by the CPU backend, gives the same logits bits as the whole
//! model on OpenCL and as the whole model on the CPU reference — for every fixture with MoE
//! layers and the bundled demo, in f32, bf16 and fp8, prefill of one sequence and a batch of
//! two, one-token decode steps and a greedy generation. Without an OpenCL platform the tests
//! print `SKIP opencl: <reason>`; with `CONCORD_REQUIRE_BACKENDS` naming opencl they fail.

use std::path::{Path, PathBuf};

use concord_loader::ModelConfig;
use concord_runtime::{ExpertPlacement, GenerateParams, LoadOptions, LogitRows, Model, Precision};
use concord_tests::{fixture_models, prompts, read_references};

const PRECISIONS: [Precision; 3] = [Precision::F32, Precision::Bf16, Precision::Fp8];

fn load(dir: &Path, backend: &str, precision: Precision, experts_on: ExpertPlacement) -> Model {
    let backend = concord_runtime::open_backend(backend).expect("backend");
    let options = LoadOptions {
        precision: Some(precision),
        max_positions: Some(256),
        experts_on,
        ..LoadOptions::default()
    };
    Model::load(dir, backend, &options, &mut |_, _| true)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The three layouts compared: CPU alone, OpenCL alone, OpenCL with the experts on the host.
fn layouts(dir: &Path, precision: Precision) -> [(&'static str, Model); 3] {
    let host = load(dir, "opencl", precision, ExpertPlacement::Host);
    assert_eq!(
        host.experts_on(),
        ExpertPlacement::Host,
        "{}: the experts must be apart from the OpenCL backend",
        dir.display()
    );
    [
        ("cpu", load(dir, "cpu", precision, ExpertPlacement::Device)),
        (
            "opencl",
            load(dir, "opencl", precision, ExpertPlacement::Device),
        ),
        ("opencl + experts on host", host),
    ]
}

/// Held by each test for its whole run: PoCL 3.1 crashes when two threads drive their own
/// OpenCL backends at once (see tests/opencl_matches_cpu.rs), so the tests take turns.
static ONE_OPENCL_TEST_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn opencl_turn() -> Option<std::sync::MutexGuard<'static, ()>> {
    let turn = ONE_OPENCL_TEST_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match concord_runtime::open_backend("opencl") {
        Ok(_) => Some(turn),
        Err(e) => {
            let required = std::env::var("CONCORD_REQUIRE_BACKENDS").unwrap_or_default();
            assert!(
                !required.split(',').any(|b| b.trim() == "opencl"),
                "opencl required but unavailable: {e}"
            );
            println!("SKIP opencl: {e}");
            None
        }
    }
}

/// The fixtures that have MoE layers, and the bundled demo, each with its prompts.
fn moe_models() -> Vec<(PathBuf, Vec<Vec<u32>>)> {
    let mut models: Vec<(PathBuf, Vec<Vec<u32>>)> = fixture_models()
        .into_iter()
        .map(|dir| {
            let refs = read_references(&dir);
            let p = prompts(&refs).into_iter().map(|(_, p)| p).collect();
            (dir, p)
        })
        .collect();
    models.push((
        concord_runtime::demo_model_dir(),
        vec![vec![0, 431, 77, 5, 312, 3, 44], vec![0, 9, 101]],
    ));
    models.retain(|(dir, _)| {
        let cfg = ModelConfig::from_file(&dir.join("config.json")).expect("config.json");
        (0..cfg.num_hidden_layers).any(|l| cfg.is_moe_layer(l))
    });
    models
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn batch_logits(model: &Model, prompts: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let mut seqs: Vec<_> = prompts
        .iter()
        .map(|p| model.new_sequence(p.len()).unwrap())
        .collect();
    let mut refs: Vec<_> = seqs.iter_mut().collect();
    let toks: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let out = model.forward(&mut refs, &toks, LogitRows::All).unwrap();
    out.per_sequence.iter().map(|l| bits(l)).collect()
}

/// Prefill of `prompt`, then one-token steps feeding `feed`: the logits bits of each step.
fn decode_steps(model: &Model, prompt: &[u32], feed: &[u32]) -> Vec<Vec<u32>> {
    let mut seq = model.new_sequence(prompt.len() + feed.len()).unwrap();
    let mut steps = Vec::new();
    let first = model
        .forward(&mut [&mut seq], &[prompt], LogitRows::Last)
        .unwrap();
    steps.push(bits(&first.per_sequence[0]));
    for tok in feed {
        let step = model
            .forward(&mut [&mut seq], &[&[*tok]], LogitRows::Last)
            .unwrap();
        steps.push(bits(&step.per_sequence[0]));
    }
    steps
}

fn greedy(model: &Model, prompt: &[u32]) -> Vec<u32> {
    model
        .generate(
            prompt,
            GenerateParams {
                max_new_tokens: 6,
                stop_tokens: Vec::new(),
                ..GenerateParams::default()
            },
        )
        .unwrap()
        .map(|t| t.unwrap())
        .collect()
}

#[test]
fn experts_on_host_logits_and_generation_are_byte_identical_to_one_backend() {
    let Some(_turn) = opencl_turn() else {
        return;
    };
    let mut compared = 0;
    for (dir, prompts) in moe_models() {
        for precision in PRECISIONS {
            let what = |layout: &str, case: &str| {
                format!("{} {precision}, {layout} vs cpu: {case}", dir.display())
            };
            let [(_, cpu), rest @ ..] = layouts(&dir, precision);
            let single = batch_logits(&cpu, &prompts[..1]);
            let batch = batch_logits(&cpu, &prompts);
            let ids = greedy(&cpu, &prompts[0]);
            let steps = decode_steps(&cpu, &prompts[0], &ids);
            for (layout, model) in &rest {
                assert!(
                    batch_logits(model, &prompts[..1]) == single,
                    "{}",
                    what(layout, "one sequence")
                );
                assert!(
                    batch_logits(model, &prompts) == batch,
                    "{}",
                    what(layout, "batch")
                );
                assert!(
                    decode_steps(model, &prompts[0], &ids) == steps,
                    "{}",
                    what(layout, "decode steps")
                );
                assert_eq!(
                    greedy(model, &prompts[0]),
                    ids,
                    "{}",
                    what(layout, "greedy")
                );
            }
            compared += 1;
        }
    }
    println!(
        "experts on host == opencl == cpu byte for byte on {compared} model × precision pairs"
    );
    // At least the demo and two MoE fixtures, in three precisions.
    assert!(compared >= 9, "only {compared} model × precision pairs");
}

/// Bytes of the routed experts' stacks computed from the config alone: 3 projections of
/// I × H per expert per MoE layer, at the precision's width; fp8 adds f32 scales per block.
fn expected_expert_bytes(cfg: &ModelConfig, precision: Precision) -> usize {
    let (h, i, e) = (
        cfg.hidden_size,
        cfg.moe_intermediate_size,
        cfg.n_routed_experts,
    );
    let moe_layers = (0..cfg.num_hidden_layers)
        .filter(|&l| cfg.is_moe_layer(l))
        .count();
    let per_expert = match precision {
        Precision::F32 => 3 * h * i * 4,
        Precision::Bf16 => 3 * h * i * 2,
        Precision::Fp8 => {
            let [b0, b1] = cfg.weight_block_size();
            let gate_or_up = i.div_ceil(b0) * h.div_ceil(b1);
            let down = h.div_ceil(b0) * i.div_ceil(b1);
            3 * h * i + 4 * (2 * gate_or_up + down)
        }
    };
    moe_layers * e * per_expert
}

#[test]
fn experts_on_host_moves_exactly_the_routed_experts_and_is_a_no_op_on_cpu() {
    let dir = concord_runtime::demo_model_dir();
    let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
    for precision in PRECISIONS {
        let cpu = load(&dir, "cpu", precision, ExpertPlacement::Host);
        assert_eq!(cpu.experts_on(), ExpertPlacement::Device, "{precision}");
        assert_eq!(
            cpu.host_weight_bytes(),
            0,
            "{precision}: no second copy on cpu"
        );
    }
    let Some(_turn) = opencl_turn() else {
        return;
    };
    for precision in PRECISIONS {
        let device = load(&dir, "opencl", precision, ExpertPlacement::Device);
        let host = load(&dir, "opencl", precision, ExpertPlacement::Host);
        assert_eq!(device.host_weight_bytes(), 0, "{precision}");
        assert_eq!(
            host.host_weight_bytes(),
            expected_expert_bytes(&cfg, precision),
            "{precision}: host bytes"
        );
        assert_eq!(
            host.weight_bytes(),
            device.weight_bytes(),
            "{precision}: the same weights in all, split across two memories"
        );
    }
}
