use crate::stdout::stdout_error;
use std::io::Write;

use clap::ValueEnum;
use concord_core::{Error, Result};
use concord_runtime::text::StopStringFilter;
use concord_runtime::GenerateParams;

use super::token_logprobs::TokenLogprobs;
use crate::common::{join_ids, parse_ids, ModelArgs, SpeculativeArgs};

/// What `generate` prints on stdout.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Emit {
    /// The decoded text, streamed as tokens arrive.
    Text,
    /// The generated token ids, comma-separated, as the last line.
    Ids,
    /// One JSON object at the end: text, ids, finish reason, token counts and, with
    /// --logprobs, each token's log-probability and the most likely alternatives.
    Json,
}

/// Continue a prompt.
///
/// Examples:
///   concord generate --prompt "The capital of France is" --max-new-tokens 20
///   concord generate --model ./DeepSeek-V3 --ids 0,1234,99 --temperature 0 --emit ids
///   concord generate --prompt "Hi" --temperature 0.7 --top-p 0.9 --seed 42
///   concord generate --prompt "Hi" --temperature 0.8 --min-p 0.05 --frequency-penalty -0.5 --repetition-penalty 1.1
///   concord generate --prompt "It was the best of times," --speculative mtp --verbose
///   concord generate --prompt "Q: Name three colours. A:" --stop "Q:" --stop "\n\n"
///   concord generate --prompt "Hi" --emit json --logprobs 5
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt text (tokenized with a leading BOS, as the model was trained).
    #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
    pub prompt: Option<String>,
    /// Prompt as token ids, e.g. 0,1234,99 (used exactly as given).
    #[arg(long)]
    pub ids: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 means greedy (argmax, ties to the lower id).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Sample only among the K most likely tokens (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Sample only among the smallest set of tokens whose probability reaches P.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[command(flatten)]
    pub sampling: super::sampling_flags::SamplingFlags,
    /// Random seed: the same seed gives the same tokens on every backend.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep going past the end-of-sequence token.
    #[arg(long)]
    pub ignore_eos: bool,
    /// End generation just before this text appears (repeatable; matched on the decoded text
    /// across token boundaries, the stop text itself is not printed; with --emit ids the ids
    /// end with the token that completed it).
    #[arg(long, value_name = "TEXT")]
    pub stop: Vec<String>,
    /// Print the text (streamed), the ids (last line, comma-separated) or one JSON object.
    #[arg(long, value_enum, default_value_t = Emit::Text)]
    pub emit: Emit,
    /// With --emit json: each generated token's log-probability (log-softmax of the logits it
    /// was chosen from, before penalties and temperature, as OpenAI reports it) and the N most
    /// likely ids at that step (0..=20).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=20))]
    pub logprobs: Option<u8>,
    #[command(flatten)]
    pub speculative: SpeculativeArgs,
    /// Also print the drafts' acceptance (with --speculative) after the usual summary line
    /// (tokens, time, tokens/s and why generation stopped, on stderr).
    #[arg(long)]
    pub verbose: bool,
}

pub fn run(args: Args) -> Result<()> {
    let speculative = args.speculative.config()?;
    if args.logprobs.is_some() && args.emit != Emit::Json {
        return Err(Error::invalid("--logprobs needs --emit json"));
    }
    let needs_tokenizer = args.prompt.is_some() || args.emit != Emit::Ids || !args.stop.is_empty();
    let tokenizer = if needs_tokenizer {
        Some(args.model.tokenizer()?)
    } else {
        None
    };
    let prompt = match (&args.prompt, &args.ids) {
        (Some(text), _) => tokenizer
            .as_ref()
            .expect("loaded above")
            .encode(text, true)?,
        (None, Some(ids)) => parse_ids(ids)?,
        (None, None) => return Err(Error::invalid("give --prompt or --ids")),
    };
    let model = args.model.load_with_mtp(speculative.is_some())?;
    let context = model.max_positions();
    if prompt.len() >= context {
        return Err(Error::invalid(format!(
            "the prompt has {} tokens; the context is {context} (--context N raises it)",
            prompt.len()
        )));
    }
    // Generation stops cleanly at the context limit (finish: length) instead of failing there.
    let max_new_tokens = args.max_new_tokens.min(context - prompt.len());
    let stop_tokens = if args.ignore_eos {
        Vec::new()
    } else {
        model.config().eos_token_ids.clone()
    };
    let params = args.sampling.apply(GenerateParams {
        max_new_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        stop_tokens,
        // `stop_tokens` already holds the EOS ids unless --ignore-eos.
        stop_at_eos: false,
        speculative,
        ..GenerateParams::default()
    });
    // Under several ranks every rank generates the same tokens; rank 0 prints them.
    let writes_output = crate::ranks::writes_output();
    let mut out: Box<dyn Write> = if writes_output {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::sink())
    };
    let mut generated = Vec::new();
    let mut stream = tokenizer.as_ref().map(|t| t.decoder_stream());
    let started = std::time::Instant::now();
    let mut first_token_at = None;
    let stop_tokens = params.stop_tokens.clone();
    let mut generation = model.generate(&prompt, params)?;
    if args.emit == Emit::Text {
        // The continuation follows its prompt, as the user would read it.
        if let Some(t) = &tokenizer {
            write!(out, "{}", t.decode(&prompt, true)).map_err(stdout_error)?;
        }
    }
    let mut stop_strings = StopStringFilter::new(args.stop.clone());
    let mut stopped_by_string = false;
    let mut json_text = String::new();
    let mut token_logprobs = TokenLogprobs::default();
    while let Some(token) = generation.next() {
        let token = token?;
        first_token_at.get_or_insert_with(std::time::Instant::now);
        generated.push(token);
        if let Some(top) = args.logprobs {
            token_logprobs.push(generation.last_logits(), token, usize::from(top));
        }
        let Some(text) = stream.as_mut().and_then(|s| s.push(token)) else {
            continue;
        };
        let released = stop_strings.push(&text);
        json_text.push_str(&released.text);
        if args.emit == Emit::Text {
            write!(out, "{}", released.text)
                .and_then(|_| out.flush())
                .map_err(stdout_error)?;
        }
        if released.stopped {
            stopped_by_string = true;
            break;
        }
    }
    if !stopped_by_string {
        // Text held back as the possible start of a stop string that never came.
        let held = stop_strings.finish();
        if args.emit == Emit::Text {
            write!(out, "{held}").map_err(stdout_error)?;
        }
        json_text.push_str(&held);
    }
    let total = started.elapsed().as_secs_f64();
    let first = first_token_at.map_or(total, |t| (t - started).as_secs_f64());
    let decode = total - first;
    let finish = match generated.last() {
        _ if stopped_by_string => "stop".to_string(),
        Some(t) if stop_tokens.contains(t) => "stop".to_string(),
        _ if max_new_tokens < args.max_new_tokens => format!("length (context {context})"),
        _ => "length".to_string(),
    };
    let tail = match args.emit {
        Emit::Text => String::new(),
        Emit::Ids => join_ids(&generated),
        Emit::Json => {
            let mut object = serde_json::json!({
                "text": json_text,
                "ids": generated,
                "finish_reason": if finish == "stop" { "stop" } else { "length" },
                "prompt_tokens": prompt.len(),
                "completion_tokens": generated.len(),
            });
            if args.logprobs.is_some() {
                object["logprobs"] = token_logprobs.to_json(tokenizer.as_ref());
            }
            object.to_string()
        }
    };
    writeln!(out, "{tail}").map_err(stdout_error)?;
    if !writes_output {
        return Ok(());
    }
    eprintln!(
        "{} prompt tokens, {} generated in {total:.2} s (first after {first:.2} s, then {:.1} \
         tok/s); finish: {finish}",
        prompt.len(),
        generated.len(),
        generated.len().saturating_sub(1) as f64 / decode.max(1e-9)
    );
    if args.verbose {
        if let Some(a) = generation.acceptance() {
            eprintln!(
                "speculative mtp: {} drafted, {} accepted ({:.1}%), mean accepted length {:.2} \
                 tokens per main-model step over {} steps",
                a.drafted,
                a.accepted,
                100.0 * a.acceptance_rate(),
                a.mean_accepted_length(),
                a.steps
            );
        }
    }
    Ok(())
}
