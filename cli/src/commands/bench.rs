use std::path::PathBuf;
use std::time::Instant;

use concord_core::{Error, Result};
use concord_runtime::{LogitRows, Model, Precision};

use crate::bandwidth;
use crate::common::ModelArgs;
use crate::stdout::outln;
use crate::synthetic::SyntheticSpec;

/// Measure prefill and decode throughput, beside the memory-bandwidth floor of decode.
///
/// Runs the model given by --model (default: the bundled demo) and, with --synthetic, a
/// random-weight model of DeepSeek-V3 proportions generated on the fly. The floor is the
/// decode rate at which reading each token's activated weights once would saturate the
/// measured memory bandwidth (host copies for cpu; the `add` kernel streaming 3 x 256 MiB
/// on a device backend); a figure near it is memory-bound.
///
/// Examples:
///   concord bench
///   concord bench --synthetic --synthetic-hidden 1792 --synthetic-layers 4 --precision fp8
///   concord bench --backend cuda --mode fast --synthetic --synthetic-hidden 7168 --precision fp8
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt length for the prefill measurement.
    #[arg(long, default_value_t = 128)]
    pub prompt_tokens: usize,
    /// Tokens to decode.
    #[arg(long, default_value_t = 32)]
    pub decode_tokens: usize,
    /// Also benchmark a synthetic model of V3 proportions.
    #[arg(long)]
    pub synthetic: bool,
    /// Hidden width of the synthetic model (V3: 7168).
    #[arg(long, default_value_t = 1792)]
    pub synthetic_hidden: usize,
    /// Layers of the synthetic model (V3: 61).
    #[arg(long, default_value_t = 4)]
    pub synthetic_layers: usize,
}

struct Figures {
    prefill_tps: f64,
    decode_tps: f64,
    bytes_per_token: f64,
}

fn measure(model: &Model, prompt_tokens: usize, decode_tokens: usize) -> Result<Figures> {
    let vocab = model.config().vocab_size as u32;
    let prompt: Vec<u32> = (0..prompt_tokens as u32)
        .map(|i| (i * 7919 + 3) % vocab)
        .collect();
    // Warm-up: prepares every op once.
    let mut warm = model.new_sequence(4)?;
    model.forward(
        &mut [&mut warm],
        &[&prompt[..prompt.len().min(4)]],
        LogitRows::Last,
    )?;

    let mut seq = model.new_sequence(prompt_tokens + decode_tokens)?;
    let t = Instant::now();
    let logits = model.forward(&mut [&mut seq], &[&prompt], LogitRows::Last)?;
    let prefill = t.elapsed().as_secs_f64();
    let mut next = argmax(&logits.per_sequence[0]);
    let t = Instant::now();
    for _ in 0..decode_tokens {
        let l = model.forward(&mut [&mut seq], &[&[next]], LogitRows::Last)?;
        next = argmax(&l.per_sequence[0]);
    }
    let decode = t.elapsed().as_secs_f64();
    Ok(Figures {
        prefill_tps: prompt_tokens as f64 / prefill,
        decode_tps: decode_tokens as f64 / decode,
        bytes_per_token: activated_weight_bytes(model),
    })
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// Weight bytes one decode token reads: everything but the routed experts it does not use.
fn activated_weight_bytes(model: &Model) -> f64 {
    let c = model.config();
    let total = model.weight_bytes() as f64;
    let moe_layers = (0..c.num_hidden_layers)
        .filter(|&l| c.is_moe_layer(l))
        .count() as f64;
    let per_expert_params = 3.0 * (c.hidden_size * c.moe_intermediate_size) as f64;
    let bytes_per_param = match model.precision() {
        Precision::F32 => 4.0,
        Precision::Bf16 => 2.0,
        Precision::Fp8 => 1.0 + 4.0 / (128.0 * 128.0),
    };
    let unused = c.n_routed_experts.saturating_sub(c.num_experts_per_tok) as f64;
    total - moe_layers * unused * per_expert_params * bytes_per_param
}

fn report(name: &str, model: &Model, f: &Figures, bandwidth: Option<f64>) -> Result<()> {
    let floor = bandwidth.map(|b| b / f.bytes_per_token);
    outln!(
        "{name:32} {:5} {:5} {:>10.1} prefill tok/s {:>9.2} decode tok/s   {:.1} MiB/token{}",
        model.precision().name(),
        model.backend().info().mode.name(),
        f.prefill_tps,
        f.decode_tps,
        f.bytes_per_token / (1 << 20) as f64,
        match floor {
            Some(fl) => format!(
                "   bandwidth floor {fl:.1} tok/s ({:.0}% of it)",
                100.0 * f.decode_tps / fl
            ),
            None => "   (bandwidth floor: bandwidth not measured)".into(),
        }
    )
}

pub fn run(args: Args) -> Result<()> {
    let model = args.model.load()?;
    let bandwidth = if args.model.backend == "cpu" {
        let b = bandwidth::host();
        outln!(
            "host memory bandwidth {:.1} GB/s (copy), backend cpu",
            b / 1e9
        )?;
        Some(b)
    } else {
        let backend = model.backend();
        match bandwidth::device(backend.as_ref(), 64 << 20) {
            Ok(b) => {
                let info = backend.info();
                outln!(
                    "device memory bandwidth {:.1} GB/s (add kernel), backend {} on {}, {} mode",
                    b / 1e9,
                    info.name,
                    info.device,
                    info.mode
                )?;
                Some(b)
            }
            Err(e) => {
                outln!("device memory bandwidth not measured: {e}")?;
                None
            }
        }
    };
    let f = measure(&model, args.prompt_tokens, args.decode_tokens)?;
    report(
        &args.model.dir()?.display().to_string(),
        &model,
        &f,
        bandwidth,
    )?;
    if args.synthetic {
        // A fresh, uniquely named directory that is removed when `scratch` drops.
        let scratch = tempfile::Builder::new()
            .prefix("concord-bench-synthetic-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let dir: PathBuf = scratch.path().to_path_buf();
        let spec = SyntheticSpec {
            hidden: args.synthetic_hidden,
            layers: args.synthetic_layers,
        };
        spec.write(&dir)?;
        let synthetic = ModelArgs {
            model: Some(dir.clone()),
            ..args.model.clone()
        };
        let result = synthetic.load().and_then(|m| {
            let f = measure(&m, args.prompt_tokens, args.decode_tokens)?;
            report(
                &format!("synthetic V3 h{} l{}", spec.hidden, spec.layers),
                &m,
                &f,
                bandwidth,
            )
        });
        drop(scratch);
        result?;
    }
    Ok(())
}
