use crate::stdout::stdout_error;
use std::io::Write;

use clap::ValueEnum;
use concord_core::{Error, Result};
use concord_runtime::GenerateParams;

use crate::common::{join_ids, parse_ids, ModelArgs};

/// What `generate` prints on stdout.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Emit {
    /// The decoded text, streamed as tokens arrive.
    Text,
    /// The generated token ids, comma-separated, as the last line.
    Ids,
}

/// Continue a prompt.
///
/// Examples:
///   concord generate --prompt "The capital of France is" --max-new-tokens 20
///   concord generate --model ./DeepSeek-V3 --ids 0,1234,99 --temperature 0 --emit ids
///   concord generate --prompt "Hi" --temperature 0.7 --top-p 0.9 --seed 42
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
    /// Random seed: the same seed gives the same tokens on every backend.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep going past the end-of-sequence token.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Print the text (streamed) or the ids (last line, comma-separated).
    #[arg(long, value_enum, default_value_t = Emit::Text)]
    pub emit: Emit,
}

pub fn run(args: Args) -> Result<()> {
    let needs_tokenizer = args.prompt.is_some() || args.emit == Emit::Text;
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
    let model = args.model.load()?;
    let stop_tokens = if args.ignore_eos {
        Vec::new()
    } else {
        model.config().eos_token_ids.clone()
    };
    let params = GenerateParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        stop_tokens,
    };
    let mut out = std::io::stdout().lock();
    let mut generated = Vec::new();
    let mut stream = tokenizer.as_ref().map(|t| t.decoder_stream());
    for token in model.generate(&prompt, params)? {
        let token = token?;
        generated.push(token);
        if args.emit == Emit::Text {
            if let Some(text) = stream.as_mut().and_then(|s| s.push(token)) {
                write!(out, "{text}")
                    .and_then(|_| out.flush())
                    .map_err(stdout_error)?;
            }
        }
    }
    let tail = match args.emit {
        Emit::Text => String::new(),
        Emit::Ids => join_ids(&generated),
    };
    writeln!(out, "{tail}").map_err(stdout_error)?;
    Ok(())
}
