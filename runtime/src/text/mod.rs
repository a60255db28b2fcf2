//! Tokenizer and chat template (spec §8).
//!
//! - [`Tokenizer`] wraps a Hugging Face `tokenizer.json` (byte-level BPE for DeepSeek-V3) through
//!   the `tokenizers` crate, plus the fields of `tokenizer_config.json` that matter at run time:
//!   BOS/EOS tokens, `add_bos_token`, `clean_up_tokenization_spaces` and `chat_template`.
//! - [`ChatTemplate`] renders the Jinja `chat_template` with minijinja configured like
//!   transformers' `apply_chat_template` environment (`trim_blocks`, `lstrip_blocks`,
//!   `raise_exception`, `strftime_now`, Python-compatible `tojson` and string methods).
//! - Chat prompts treat message contents as text: special-token text typed in a message is not
//!   a control token unless [`ChatOptions::allow_special_tokens_in_content`] asks for it.
//! - [`TokenStreamDecoder`] turns generated ids into text incrementally, holding back bytes of a
//!   character that is split across tokens.
//! - [`StopStringFilter`] matches stop strings on the decoded text across token boundaries (the
//!   server and the Python bindings share it).

mod chat_encoding;
mod chat_template;
mod stop_strings;
mod tokenizer;

pub use chat_encoding::ChatOptions;
pub use chat_template::{ChatMessage, ChatTemplate};
pub use stop_strings::{ReleasedText, StopStringFilter};
pub use tokenizer::{TokenStreamDecoder, Tokenizer};
