//! The whole demo model on the Ascend backend through the test-only ACL stand-in (a plumbing
//! test, not Ascend hardware): prompt and decode logits bit-identical to the CPU backend at
//! f32, bf16 and fp8.
mod common;

use std::path::PathBuf;
use std::sync::Arc;

use concord_ops::Backend;
use concord_runtime::{LoadOptions, LogitRows, Model, Precision};

fn demo_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo")
}

/// The logits of every prompt position, then of one decode step, for two sequences.
fn logits(backend: Arc<dyn Backend>, precision: Precision) -> Vec<Vec<f32>> {
    let options = LoadOptions {
        precision: Some(precision),
        max_positions: Some(32),
        mtp: false,
        parallel: None,
    };
    let model = Model::load(&demo_model(), backend, &options, &mut |_, _| true).expect("load");
    let prompts: [&[u32]; 2] = [&[1, 7, 42, 3, 99], &[5, 11, 2]];
    let mut seqs: Vec<_> = prompts
        .iter()
        .map(|p| model.new_sequence(p.len() + 1).expect("sequence"))
        .collect();
    let mut refs: Vec<&mut _> = seqs.iter_mut().collect();
    let mut out = model
        .forward(&mut refs, &prompts, LogitRows::All)
        .expect("prompt")
        .per_sequence;
    let step: [&[u32]; 2] = [&[17], &[23]];
    let decode = model
        .forward(&mut refs, &step, LogitRows::All)
        .expect("decode")
        .per_sequence;
    for (o, d) in out.iter_mut().zip(decode) {
        o.extend(d);
    }
    out
}

#[test]
fn whole_model_logits_are_bit_identical_to_the_cpu_backend() {
    let ascend = common::standin_backend();
    let cpu = concord_backend_cpu::probe().expect("cpu backend");
    for precision in [Precision::F32, Precision::Bf16, Precision::Fp8] {
        let want = logits(cpu.clone(), precision);
        let got = logits(ascend.clone(), precision);
        assert_eq!(want.len(), got.len());
        for (s, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(w.len(), g.len(), "{precision:?} sequence {s}");
            let w_bits: Vec<u32> = w.iter().map(|x| x.to_bits()).collect();
            let g_bits: Vec<u32> = g.iter().map(|x| x.to_bits()).collect();
            let first = w_bits.iter().zip(&g_bits).position(|(a, b)| a != b);
            assert!(
                first.is_none(),
                "{precision:?} sequence {s}: logit {first:?} differs ({} vs {})",
                w[first.unwrap()],
                g[first.unwrap()]
            );
        }
    }
}
