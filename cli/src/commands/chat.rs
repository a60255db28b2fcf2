use crate::stdout::stdout_error;
use std::io::{BufRead, Write};

use concord_core::{Error, Result};
use concord_runtime::text::{ChatMessage, ChatOptions};
use concord_runtime::GenerateParams;

use crate::common::{ModelArgs, SpeculativeArgs};

/// Chat with the model: type a message, get the reply streamed; an empty line or Ctrl-D ends.
///
/// The conversation is rendered with the model's chat template each turn.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Optional system prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens per reply.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Sampling temperature: a finite number ≥ 0 (0, or anything below 1e-5, = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Let special-token text typed in a message (`<｜Assistant｜>`, …) become that control
    /// token, as transformers does. Off: messages are plain text and cannot forge turns.
    #[arg(long)]
    pub allow_special_tokens_in_content: bool,
    #[command(flatten)]
    pub speculative: SpeculativeArgs,
}

pub fn run(args: Args) -> Result<()> {
    let base_params = GenerateParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        speculative: args.speculative.config()?,
        ..GenerateParams::default()
    };
    // Bad sampling parameters fail before the model loads, not after the first message.
    base_params.validate()?;
    let chat = ChatOptions {
        add_generation_prompt: true,
        allow_special_tokens_in_content: args.allow_special_tokens_in_content,
    };
    let tokenizer = args.model.tokenizer()?;
    let model = args
        .model
        .load_with_mtp(base_params.speculative.is_some())?;
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(ChatMessage::new("system", system));
    }
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let io = stdout_error;
    loop {
        write!(out, "> ").and_then(|_| out.flush()).map_err(io)?;
        let mut line = String::new();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io("stdin", e))?
            == 0
            || line.trim().is_empty()
        {
            return Ok(());
        }
        messages.push(ChatMessage::new("user", line.trim_end()));
        let prompt = tokenizer.apply_chat_with(&messages, chat)?;
        let params = GenerateParams {
            stop_tokens: model.config().eos_token_ids.clone(),
            ..base_params.clone()
        };
        let mut reply = Vec::new();
        let mut stream = tokenizer.decoder_stream();
        for token in model.generate(&prompt, params)? {
            let token = token?;
            if model.config().eos_token_ids.contains(&token) {
                break;
            }
            reply.push(token);
            if let Some(text) = stream.push(token) {
                write!(out, "{text}")
                    .and_then(|_| out.flush())
                    .map_err(io)?;
            }
        }
        writeln!(out).map_err(io)?;
        messages.push(ChatMessage::new(
            "assistant",
            tokenizer.decode(&reply, true),
        ));
    }
}
