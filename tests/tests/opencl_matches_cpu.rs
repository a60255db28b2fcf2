//! The whole model on OpenCL is byte-identical to the CPU reference, for every fixture, every
//! precision, one sequence and a batch of two. Without an OpenCL platform the test prints
//! `SKIP opencl: <reason>`; with `CONCORD_REQUIRE_BACKENDS` naming opencl it fails instead.

use std::path::Path;

use concord_runtime::{LoadOptions, LogitRows, Model, Precision};
use concord_tests::{fixture_models, read_references};

fn load(dir: &Path, backend: &str, precision: Precision) -> Model {
    let backend = concord_runtime::open_backend(backend).expect("backend");
    let options = LoadOptions {
        precision: Some(precision),
        max_positions: Some(256),
    };
    Model::load(dir, backend, &options, &mut |_, _| true)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn batch_logits(model: &Model, prompts: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let mut seqs: Vec<_> = prompts
        .iter()
        .map(|p| model.new_sequence(p.len()).unwrap())
        .collect();
    let mut refs: Vec<_> = seqs.iter_mut().collect();
    let toks: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    model
        .forward(&mut refs, &toks, LogitRows::All)
        .unwrap()
        .per_sequence
}

fn opencl_available() -> bool {
    match concord_runtime::open_backend("opencl") {
        Ok(_) => true,
        Err(e) => {
            let required = std::env::var("CONCORD_REQUIRE_BACKENDS").unwrap_or_default();
            assert!(
                !required.split(',').any(|b| b.trim() == "opencl"),
                "opencl required but unavailable: {e}"
            );
            println!("SKIP opencl: {e}");
            false
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn opencl_logits_are_byte_identical_to_cpu_for_every_fixture_and_precision() {
    if !opencl_available() {
        return;
    }
    let mut compared = 0;
    for dir in fixture_models() {
        let refs = read_references(&dir);
        let mut prompts: Vec<(usize, Vec<u32>)> = refs
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("input_ids.")
                    .map(|i| (i.parse::<usize>().unwrap(), v.ids()))
            })
            .collect();
        prompts.sort();
        let prompts: Vec<Vec<u32>> = prompts.into_iter().map(|(_, p)| p).collect();
        for precision in [Precision::F32, Precision::Bf16, Precision::Fp8] {
            let cpu = load(&dir, "cpu", precision);
            let ocl = load(&dir, "opencl", precision);
            let single_cpu = batch_logits(&cpu, &prompts[..1]);
            let single_ocl = batch_logits(&ocl, &prompts[..1]);
            assert_eq!(
                bits(&single_cpu[0]),
                bits(&single_ocl[0]),
                "{} {precision}: one sequence",
                dir.display()
            );
            let batch_cpu = batch_logits(&cpu, &prompts);
            let batch_ocl = batch_logits(&ocl, &prompts);
            for (k, (a, b)) in batch_cpu.iter().zip(&batch_ocl).enumerate() {
                assert_eq!(
                    bits(a),
                    bits(b),
                    "{} {precision}: batch sequence {k}",
                    dir.display()
                );
            }
            compared += 1;
        }
    }
    println!("opencl == cpu byte for byte on {compared} fixture × precision pairs");
    assert!(compared >= 12);
}
