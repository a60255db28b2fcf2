use std::path::PathBuf;

use concord_core::{Error, Result};
use concord_runtime::text::{ChatMessage, ChatOptions};

use crate::common::{join_ids, ModelArgs};
use crate::stdout::outln;

/// Print token ids (comma-separated, last line of stdout).
///
/// Examples:
///   concord tokenize --text "Hello world" --add-bos
///   concord tokenize --chat conversation.json     # [{"role":"user","content":"Hi"}]
///
/// --chat applies the model's chat template with the generation prompt and tokenizes the result
/// without adding special tokens (the template writes the BOS itself), as transformers'
/// apply_chat_template does — except that special-token text inside a message stays text
/// unless --allow-special-tokens-in-content is given.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text to tokenize.
    #[arg(long, conflicts_with = "chat", required_unless_present = "chat")]
    pub text: Option<String>,
    /// Prepend the BOS token (with --text).
    #[arg(long, requires = "text")]
    pub add_bos: bool,
    /// JSON file with a list of {"role", "content"} messages.
    #[arg(long, value_name = "MESSAGES.json")]
    pub chat: Option<PathBuf>,
    /// With --chat: let special-token text in a message (`<｜Assistant｜>`, …) become that
    /// control token, as transformers does. Off: message contents are plain text.
    #[arg(long, requires = "chat")]
    pub allow_special_tokens_in_content: bool,
}

pub fn run(args: Args) -> Result<()> {
    let tokenizer = args.model.tokenizer()?;
    let ids = match (&args.text, &args.chat) {
        (Some(text), _) => tokenizer.encode(text, args.add_bos)?,
        (None, Some(path)) => {
            let json = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let messages: Vec<ChatMessage> = serde_json::from_str(&json).map_err(|e| {
                Error::invalid(format!(
                    "{}: not a list of chat messages: {e}",
                    path.display()
                ))
            })?;
            tokenizer.apply_chat_with(
                &messages,
                ChatOptions {
                    add_generation_prompt: true,
                    allow_special_tokens_in_content: args.allow_special_tokens_in_content,
                },
            )?
        }
        (None, None) => return Err(Error::invalid("give --text or --chat")),
    };
    outln!("{}", join_ids(&ids))?;
    Ok(())
}
