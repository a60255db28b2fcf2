use std::path::PathBuf;
use std::time::Instant;

use concord_core::{Error, Result};
use concord_runtime::{GenerateParams, LogitRows, Model, SpeculativeMtp};

use crate::bandwidth;
use crate::commands::inspect::human_bytes;
use crate::common::{ModelArgs, SpeculativeArgs};
use crate::decode_bytes::{self, WeightBytes};
use crate::stdout::outln;
use crate::synthetic::SyntheticSpec;

/// Measure prefill and decode throughput, beside the memory-bandwidth floor of decode.
///
/// Runs the model given by --model (default: the bundled demo) and, with --synthetic, a
/// random-weight model of DeepSeek-V3 proportions generated on the fly. The floor is the
/// decode rate at which reading each token's activated weights once would saturate the
/// memory bandwidth (the cpu backend: reading 256 MiB with the run's own --threads; a device
/// backend: the `add` kernel streaming 3 x 256 MiB); a figure near it is memory-bound. The
/// bytes a token reads count one embedding row, each weight once and only the routed experts
/// a token uses (docs/benchmarks.md).
///
/// --prompt-tokens P --decode-tokens M times a prefill of P tokens, then M single-token
/// decode steps after it (so `--prompt-tokens 1024 --decode-tokens 64` is "decode 64 after
/// 1024"; 0 decode tokens times the prefill only). --json adds one machine-readable line per
/// model (for bench/compare_llama_cpp.sh). --synthetic-save DIR writes the synthetic model
/// (BF16 safetensors, config.json and a small byte-level BPE tokenizer.json) to DIR and exits.
///
/// Examples:
///   concord bench
///   concord bench --synthetic --synthetic-hidden 1792 --synthetic-layers 4 --precision fp8
///   concord bench --backend cuda --mode fast --synthetic --synthetic-hidden 7168 --precision fp8
///   concord bench --speculative mtp --decode-tokens 64
///   concord bench --synthetic-save /tmp/v3-h1024-l4 --synthetic-hidden 1024
///   concord --threads 2 bench --model /tmp/v3-h1024-l4 --prompt-tokens 1024 --json
///   concord bench --backend opencl --experts-on host
///
/// --profile then repeats the measurement with every op launch timed and prints a table per
/// phase (prefill, decode; with --speculative mtp also plain and MTP generation): launches per
/// token, total ms, µs per launch and share of the phase for each op kind (matmuls by weight
/// shape), and as their own rows the time outside ops (prepared-op lookup, output allocation,
/// uploads, read-back, and the host work between launches: planning, sampling). The figures
/// above come from the unprofiled run. On a device backend each launch is followed by a
/// synchronize while profiling (said in the table).
///
///   concord --threads 2 bench --profile --prompt-tokens 128 --decode-tokens 64
///   concord bench --profile --speculative mtp
///
/// With --speculative mtp it also decodes greedily from a text prompt (--prompt; default: the
/// opening of A Tale of Two Cities) with and without MTP drafts in the same run and prints
/// both rates, the speed-up, the drafts' acceptance and whether the outputs are identical
/// (they must be).
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt length for the prefill measurement (at least 1).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    pub prompt_tokens: u64,
    /// Tokens to decode after the prompt (0: time the prefill only).
    #[arg(long, default_value_t = 32)]
    pub decode_tokens: usize,
    /// Also print one JSON line per model with every figure (tokens/s, bytes, bandwidth).
    #[arg(long)]
    pub json: bool,
    /// Then time every op launch (by op kind; matmuls by weight shape) and the work between
    /// them, and print a table per phase (prefill, decode).
    #[arg(long, conflicts_with = "synthetic_save")]
    pub profile: bool,
    /// Write the synthetic model (see --synthetic-hidden/-layers) to DIR and exit.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["synthetic", "speculative"])]
    pub synthetic_save: Option<PathBuf>,
    /// Also benchmark a synthetic model of V3 proportions.
    #[arg(long)]
    pub synthetic: bool,
    /// Hidden width of the synthetic model (V3: 7168).
    #[arg(long, default_value_t = 1792)]
    pub synthetic_hidden: usize,
    /// Layers of the synthetic model (V3: 61).
    #[arg(long, default_value_t = 4)]
    pub synthetic_layers: usize,
    #[command(flatten)]
    pub speculative: SpeculativeArgs,
    /// Prompt text of the speculative comparison.
    #[arg(long, default_value = SPECULATIVE_PROMPT, requires = "speculative")]
    pub prompt: String,
}

/// A prompt any English model continues confidently (and the demo model has memorised).
const SPECULATIVE_PROMPT: &str = "It was the best of times, it was the worst of times,";

struct Figures {
    prompt_tokens: usize,
    prefill_tps: f64,
    decode_tokens: usize,
    /// None when no token was decoded.
    decode_tps: Option<f64>,
    bytes: WeightBytes,
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
        prompt_tokens,
        prefill_tps: prompt_tokens as f64 / prefill,
        decode_tokens,
        decode_tps: (decode_tokens > 0).then(|| decode_tokens as f64 / decode),
        bytes: decode_bytes::weight_bytes(model.config(), model.precision()),
    })
}

/// The prefill and decode of [`measure`] again with the model's profiler on: one table each.
fn profile_phases(model: &Model, prompt_tokens: usize, decode_tokens: usize) -> Result<()> {
    let vocab = model.config().vocab_size as u32;
    let prompt: Vec<u32> = (0..prompt_tokens as u32)
        .map(|i| (i * 7919 + 3) % vocab)
        .collect();
    let mut seq = model.new_sequence(prompt_tokens + decode_tokens)?;
    model.profile_start();
    let t = Instant::now();
    let logits = model.forward(&mut [&mut seq], &[&prompt], LogitRows::Last)?;
    let mut next = argmax(&logits.per_sequence[0]);
    let prefill = t.elapsed();
    let profile = model.profile_stop();
    outln!(
        "{}",
        profile.table(
            &format!("prefill of {prompt_tokens} tokens (one pass)"),
            prefill,
            1,
            "pass"
        )
    )?;
    if decode_tokens == 0 {
        return Ok(());
    }
    model.profile_start();
    let t = Instant::now();
    for _ in 0..decode_tokens {
        let l = model.forward(&mut [&mut seq], &[&[next]], LogitRows::Last)?;
        next = argmax(&l.per_sequence[0]);
    }
    let decode = t.elapsed();
    let profile = model.profile_stop();
    outln!(
        "{}",
        profile.table(
            &format!("decode of {decode_tokens} tokens after {prompt_tokens} (argmax sampling)"),
            decode,
            decode_tokens,
            "token"
        )
    )
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

fn report(
    name: &str,
    model: &Model,
    f: &Figures,
    bandwidth: Option<f64>,
    json: bool,
) -> Result<()> {
    let per_token = f.bytes.per_decode_token as f64;
    let floor = bandwidth.map(|b| b / per_token);
    let decode = match f.decode_tps {
        Some(tps) => format!("{tps:>9.2} decode tok/s"),
        None => format!("{:>9} decode tok/s", "-"),
    };
    outln!(
        "{name:32} {:5} {:5} {:>10.1} prefill tok/s {decode}   {:.1} MiB/token{}",
        model.precision().name(),
        model.backend().info().mode.name(),
        f.prefill_tps,
        per_token / (1 << 20) as f64,
        match (floor, f.decode_tps) {
            (Some(fl), Some(tps)) => format!(
                "   bandwidth floor {fl:.1} tok/s ({:.0}% of it)",
                100.0 * tps / fl
            ),
            (Some(fl), None) => format!("   bandwidth floor {fl:.1} tok/s"),
            (None, _) => "   (bandwidth floor: bandwidth not measured)".into(),
        }
    )?;
    if json {
        let line = serde_json::json!({
            "system": "concord",
            "model": name,
            "precision": model.precision().name(),
            "mode": model.backend().info().mode.name(),
            "threads": rayon::current_num_threads(),
            "prompt_tokens": f.prompt_tokens,
            "prefill_tok_s": f.prefill_tps,
            "decode_tokens": f.decode_tokens,
            "decode_tok_s": f.decode_tps,
            "decode_bytes_per_token": f.bytes.per_decode_token,
            "resident_weight_bytes": model.weight_bytes(),
            "bandwidth_bytes_per_s": bandwidth,
            "floor_tok_s": floor,
        });
        outln!("{line}")?;
    }
    Ok(())
}

/// Greedy decode of `tokens` new tokens after `prompt`: the tokens, the decode rate (tokens
/// after the first over the time after the first, so prefill is excluded) and the drafts'
/// acceptance.
fn timed_generation(
    model: &Model,
    prompt: &[u32],
    tokens: usize,
    speculative: Option<SpeculativeMtp>,
    profile: bool,
) -> Result<(Vec<u32>, f64, Option<concord_runtime::AcceptanceStats>)> {
    let params = GenerateParams {
        max_new_tokens: tokens,
        stop_at_eos: false,
        speculative,
        ..GenerateParams::default()
    };
    let mut generation = model.generate(prompt, params)?;
    let mut ids = Vec::with_capacity(tokens);
    let mut first = None;
    for token in generation.by_ref() {
        ids.push(token?);
        first.get_or_insert_with(|| {
            if profile {
                model.profile_start();
            }
            Instant::now()
        });
    }
    let elapsed = first.map(|t| t.elapsed());
    let decode = elapsed.map_or(0.0, |d| d.as_secs_f64());
    let rate = ids.len().saturating_sub(1) as f64 / decode.max(1e-9);
    if profile {
        let table = model.profile_stop().table(
            &format!(
                "greedy generation {} (tokens after the first)",
                if speculative.is_some() {
                    "with MTP drafts"
                } else {
                    "without drafts"
                }
            ),
            elapsed.unwrap_or_default(),
            ids.len().saturating_sub(1),
            "token",
        );
        outln!("{table}")?;
    }
    Ok((ids, rate, generation.acceptance()))
}

/// Rounds of the speculative comparison (each: plain, then with MTP). A round of the demo's
/// default 32 tokens takes about 10 ms, so 15 rounds keep the comparison well under a second
/// while a shared machine's load spikes fall out of the medians.
const SPECULATIVE_ROUNDS: usize = 15;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Decode with and without MTP drafts in one run, side by side (medians of interleaved rounds).
fn compare_speculative(args: &Args, model: &Model, config: SpeculativeMtp) -> Result<()> {
    let prompt = args.model.tokenizer()?.encode(&args.prompt, true)?;
    let tokens = args.decode_tokens.max(2);
    // Warm-up: prepares every op of both paths.
    timed_generation(model, &prompt, 4, None, false)?;
    timed_generation(model, &prompt, 4, Some(config), false)?;
    // Interleaved rounds, medians: the two paths see the same background load.
    let (mut plain_rates, mut spec_rates) = (Vec::new(), Vec::new());
    let (mut plain_ids, mut spec_ids, mut stats) = (Vec::new(), Vec::new(), None);
    for _ in 0..SPECULATIVE_ROUNDS {
        let (ids, rate, _) = timed_generation(model, &prompt, tokens, None, false)?;
        plain_rates.push(rate);
        plain_ids = ids;
        let (ids, rate, s) = timed_generation(model, &prompt, tokens, Some(config), false)?;
        spec_rates.push(rate);
        spec_ids = ids;
        stats = s;
    }
    // The speed-up is the median of each round's own ratio: a round's two runs are back to
    // back, so load that changes between rounds cancels out of it.
    let mut ratios: Vec<f64> = plain_rates
        .iter()
        .zip(&spec_rates)
        .map(|(p, s)| s / p.max(1e-9))
        .collect();
    let speedup = median(&mut ratios);
    let (plain_rate, spec_rate) = (median(&mut plain_rates), median(&mut spec_rates));
    let stats = stats.unwrap_or_default();
    outln!(
        "speculative mtp ({} draft token{}): greedy decode {plain_rate:.1} tok/s plain, \
         {spec_rate:.1} tok/s with MTP (medians of {SPECULATIVE_ROUNDS} interleaved rounds; \
         speed-up {speedup:.2}x, the median of the rounds' ratios); acceptance {:.1}% ({} of {} drafts), mean \
         accepted length {:.2}; outputs identical: {}",
        config.draft_tokens,
        if config.draft_tokens == 1 { "" } else { "s" },
        100.0 * stats.acceptance_rate(),
        stats.accepted,
        stats.drafted,
        stats.mean_accepted_length(),
        if plain_ids == spec_ids { "yes" } else { "NO" }
    )?;
    if plain_ids != spec_ids {
        return Err(Error::model(
            "speculative greedy decoding changed the output: please report this",
        ));
    }
    if args.profile {
        // One more round of each, profiled (after the measured ones, which it cannot slow).
        timed_generation(model, &prompt, tokens, None, true)?;
        timed_generation(model, &prompt, tokens, Some(config), true)?;
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let spec = SyntheticSpec {
        hidden: args.synthetic_hidden,
        layers: args.synthetic_layers,
    };
    if let Some(dir) = &args.synthetic_save {
        spec.write(dir)?;
        return outln!(
            "wrote synthetic V3 h{} l{} to {}",
            spec.hidden,
            spec.layers,
            dir.display()
        );
    }
    let prompt_tokens = usize::try_from(args.prompt_tokens)
        .map_err(|_| Error::invalid("--prompt-tokens does not fit this machine's memory"))?;
    let speculative = args.speculative.config()?;
    let model = args.model.load_with_mtp(speculative.is_some())?;
    let bandwidth = if args.model.backend == "cpu" {
        let b = bandwidth::host();
        outln!(
            "host memory bandwidth {:.1} GB/s (read, {} threads), backend cpu",
            b / 1e9,
            rayon::current_num_threads()
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
    let host = model.host_weight_bytes();
    if host > 0 {
        outln!(
            "experts on host: {} of routed experts in host RAM (cpu backend), {} on {}; the \
             floor below counts every byte at the device bandwidth",
            human_bytes(host),
            human_bytes(model.weight_bytes() - host),
            args.model.backend
        )?;
    }
    let f = measure(&model, prompt_tokens, args.decode_tokens)?;
    report(
        &args.model.dir()?.display().to_string(),
        &model,
        &f,
        bandwidth,
        args.json,
    )?;
    if args.profile {
        profile_phases(&model, prompt_tokens, args.decode_tokens)?;
    }
    if let Some(config) = speculative {
        compare_speculative(&args, &model, config)?;
    }
    if args.synthetic {
        // A fresh, uniquely named directory that is removed when `scratch` drops.
        let scratch = tempfile::Builder::new()
            .prefix("concord-bench-synthetic-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let dir: PathBuf = scratch.path().to_path_buf();
        spec.write(&dir)?;
        let synthetic = ModelArgs {
            model: Some(dir.clone()),
            ..args.model.clone()
        };
        // The synthetic model has no MTP module: it is benchmarked plainly.
        let result = synthetic.load().and_then(|m| {
            let f = measure(&m, prompt_tokens, args.decode_tokens)?;
            report(
                &format!("synthetic V3 h{} l{}", spec.hidden, spec.layers),
                &m,
                &f,
                bandwidth,
                args.json,
            )?;
            if args.profile {
                profile_phases(&m, prompt_tokens, args.decode_tokens)?;
            }
            Ok(())
        });
        drop(scratch);
        result?;
    }
    Ok(())
}
