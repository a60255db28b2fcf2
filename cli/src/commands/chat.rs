use std::io::{BufRead, IsTerminal, Write};

use concord_core::{Error, Result};
use concord_runtime::text::{ChatMessage, ChatOptions, StopStringFilter, Tokenizer};
use concord_runtime::{GenerateParams, Model};

use super::token_logprobs::TokenLogprobs;
use crate::common::{ModelArgs, SpeculativeArgs};
use crate::stdout::stdout_error;

/// Chat with the model: type a message, get the reply streamed.
///
/// The conversation is rendered with the model's chat template each turn. When it no longer
/// fits the context, the oldest turns are dropped (the system prompt is kept) and you are told.
/// On a terminal the input line has editing and history. Commands: /help, /reset (start over,
/// keeping the system prompt), /exit (or Ctrl-D); start a message with // to send a literal /.
///
/// Examples:
///   concord chat
///   concord chat --model ./DeepSeek-V3 --system "You are terse." --temperature 0.6 --top-p 0.95
///   concord chat --speculative mtp --max-new-tokens 512
///   concord chat --temperature 0.7 --stop "User:"
///   concord chat --logprobs 5 2>logprobs.jsonl
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
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
    /// Sample only among the K most likely tokens (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[command(flatten)]
    pub sampling: super::sampling_flags::SamplingFlags,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// End a reply just before this text appears (repeatable; matched on the decoded text
    /// across token boundaries; the stop text is neither printed nor kept in the conversation).
    #[arg(long, value_name = "TEXT")]
    pub stop: Vec<String>,
    /// After each reply, one JSON line on stderr (`{"reply", "prompt_tokens", "ids",
    /// "logprobs"}`): each reply token's log-probability (log-softmax of the logits it was
    /// chosen from, before penalties and temperature, as OpenAI reports it) and the N most
    /// likely ids at that step (0..=20), as `generate --emit json --logprobs N` gives them.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=20))]
    pub logprobs: Option<u8>,
    /// Let special-token text typed in a message (`<｜Assistant｜>`, …) become that control
    /// token, as transformers does. Off: messages are plain text and cannot forge turns.
    #[arg(long)]
    pub allow_special_tokens_in_content: bool,
    #[command(flatten)]
    pub speculative: SpeculativeArgs,
}

const HELP: &str = "commands: /help  this list
          /reset start over (the system prompt is kept)
          /exit  leave (Ctrl-D too)
start a message with // to send text beginning with /";

/// Where lines come from: an editor with history on a terminal, plain lines otherwise.
enum Input {
    Editor(Box<rustyline::DefaultEditor>),
    Lines(std::io::StdinLock<'static>),
}

impl Input {
    fn open() -> Input {
        if std::io::stdin().is_terminal() {
            if let Ok(editor) = rustyline::DefaultEditor::new() {
                return Input::Editor(Box::new(editor));
            }
        }
        Input::Lines(std::io::stdin().lock())
    }

    /// The next line, or None at the end of input (Ctrl-D, Ctrl-C, end of the pipe).
    fn line(&mut self) -> Result<Option<String>> {
        match self {
            Input::Editor(editor) => match editor.readline("> ") {
                Ok(line) => {
                    let _ = editor.add_history_entry(line.as_str());
                    Ok(Some(line))
                }
                Err(
                    rustyline::error::ReadlineError::Eof
                    | rustyline::error::ReadlineError::Interrupted,
                ) => Ok(None),
                Err(e) => Err(Error::invalid(format!("reading the terminal: {e}"))),
            },
            Input::Lines(stdin) => {
                let mut line = String::new();
                let n = stdin
                    .read_line(&mut line)
                    .map_err(|e| Error::io("stdin", e))?;
                Ok((n > 0).then(|| line.trim_end_matches(['\n', '\r']).to_string()))
            }
        }
    }
}

/// The conversation and how it is fitted into the context.
struct Conversation {
    system: Option<String>,
    turns: Vec<ChatMessage>,
}

impl Conversation {
    fn messages(&self) -> Vec<ChatMessage> {
        let mut all: Vec<ChatMessage> = self
            .system
            .iter()
            .map(|s| ChatMessage::new("system", s))
            .collect();
        all.extend(self.turns.iter().cloned());
        all
    }

    /// The prompt of the conversation, dropping the oldest turns until it leaves room for at
    /// least `reply` tokens in `context`; tells the user what was dropped. None when even the
    /// newest message alone does not fit (it is then removed).
    fn fit(
        &mut self,
        tokenizer: &Tokenizer,
        chat: ChatOptions,
        context: usize,
        reply: usize,
    ) -> Result<Option<Vec<u32>>> {
        let mut dropped = 0;
        loop {
            let prompt = tokenizer.apply_chat_with(&self.messages(), chat)?;
            if prompt.len() + reply.min(context / 2).max(1) <= context {
                if dropped > 0 {
                    eprintln!(
                        "(the conversation outgrew the {context}-token context: dropped the \
                         {dropped} oldest message{})",
                        if dropped == 1 { "" } else { "s" }
                    );
                }
                return Ok(Some(prompt));
            }
            if self.turns.len() <= 1 {
                eprintln!(
                    "(your message is {} tokens with the template; the context is {context}: \
                     send something shorter)",
                    prompt.len()
                );
                self.turns.clear();
                return Ok(None);
            }
            // The oldest message; an assistant reply then leads, so drop it too.
            self.turns.remove(0);
            dropped += 1;
            if self.turns.first().is_some_and(|m| m.role == "assistant") {
                self.turns.remove(0);
                dropped += 1;
            }
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let base_params = args.sampling.apply(GenerateParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        speculative: args.speculative.config()?,
        ..GenerateParams::default()
    });
    // Bad sampling parameters fail before the model loads, not after the first message.
    base_params.validate()?;
    let chat = ChatOptions {
        add_generation_prompt: true,
        allow_special_tokens_in_content: args.allow_special_tokens_in_content,
    };
    // Every rank would need each line the user types (a broadcast of stdin): not built yet.
    args.model.require_one_rank("chat")?;
    let tokenizer = args.model.tokenizer()?;
    let model = args
        .model
        .load_with_mtp(base_params.speculative.is_some())?;
    let mut input = Input::open();
    if matches!(input, Input::Editor(_)) {
        eprintln!(
            "concord chat: {} on {} ({}), context {} tokens. /help lists commands; /exit or \
             Ctrl-D leaves.",
            args.model.dir()?.display(),
            model.backend().info().name,
            model.precision(),
            model.max_positions()
        );
    }
    let mut conversation = Conversation {
        system: args.system.clone(),
        turns: Vec::new(),
    };
    let mut out = std::io::stdout();
    let mut replies = 0usize;
    loop {
        let Some(line) = input.line()? else {
            return Ok(());
        };
        let text = line.trim_end();
        let message = match text {
            "" => continue,
            "/exit" | "/quit" => return Ok(()),
            "/help" => {
                eprintln!("{HELP}");
                continue;
            }
            "/reset" => {
                conversation.turns.clear();
                eprintln!("(conversation cleared)");
                continue;
            }
            t if t.starts_with("//") => &t[1..],
            t if t.starts_with('/') => {
                eprintln!("unknown command {t}; /help lists them");
                continue;
            }
            t => t,
        };
        conversation.turns.push(ChatMessage::new("user", message));
        let context = model.max_positions();
        let Some(prompt) = conversation.fit(&tokenizer, chat, context, args.max_new_tokens)? else {
            continue;
        };
        let (reply, logprobs) = reply(
            &model,
            &tokenizer,
            &prompt,
            &base_params,
            &args.stop,
            args.logprobs,
            &mut out,
        )?;
        replies += 1;
        if let Some(logprobs) = logprobs {
            eprintln!(
                "{}",
                serde_json::json!({
                    "reply": replies,
                    "prompt_tokens": prompt.len(),
                    "ids": logprobs.ids(),
                    "logprobs": logprobs.to_json(Some(&tokenizer)),
                })
            );
        }
        conversation
            .turns
            .push(ChatMessage::new("assistant", reply));
    }
}

/// Streams one reply to `out` and returns its text, and with `top_logprobs` its tokens'
/// log-probabilities (the end-of-sequence token excluded).
fn reply(
    model: &Model,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    base: &GenerateParams,
    stops: &[String],
    top_logprobs: Option<u8>,
    out: &mut std::io::Stdout,
) -> Result<(String, Option<TokenLogprobs>)> {
    let eos = &model.config().eos_token_ids;
    let params = GenerateParams {
        max_new_tokens: base
            .max_new_tokens
            .min(model.max_positions().saturating_sub(prompt.len())),
        stop_tokens: eos.clone(),
        ..base.clone()
    };
    let mut tokens = Vec::new();
    let mut stream = tokenizer.decoder_stream();
    let mut stop_strings = StopStringFilter::new(stops.to_vec());
    let mut printed = String::new();
    let mut logprobs = top_logprobs.map(|_| TokenLogprobs::default());
    let mut generation = model.generate(prompt, params.clone())?;
    while let Some(token) = generation.next() {
        let token = token?;
        if eos.contains(&token) {
            break;
        }
        tokens.push(token);
        if let (Some(l), Some(top)) = (logprobs.as_mut(), top_logprobs) {
            l.push(generation.last_logits(), token, usize::from(top));
        }
        if let Some(text) = stream.push(token) {
            let released = stop_strings.push(&text);
            write!(out, "{}", released.text)
                .and_then(|_| out.flush())
                .map_err(stdout_error)?;
            printed.push_str(&released.text);
            if released.stopped {
                writeln!(out).map_err(stdout_error)?;
                return Ok((printed, logprobs));
            }
        }
    }
    write!(out, "{}", stop_strings.finish()).map_err(stdout_error)?;
    writeln!(out).map_err(stdout_error)?;
    if tokens.len() == params.max_new_tokens && params.max_new_tokens < base.max_new_tokens {
        eprintln!("(reply cut at the context limit)");
    }
    Ok((tokenizer.decode(&tokens, true), logprobs))
}
