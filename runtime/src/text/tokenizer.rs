//! A Hugging Face fast tokenizer (`tokenizer.json`) with the run-time fields of
//! `tokenizer_config.json` (spec §8).

use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use concord_core::{Error, Result};
use serde::Deserialize;

use super::chat_encoding::{ChatOptions, SpecialTokens};
use super::chat_template::{ChatMessage, ChatTemplate};

type HfTokenizer = tokenizers::Tokenizer;

/// A special token in `tokenizer_config.json`: a plain string or an `AddedToken` dict.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenText {
    Text(String),
    Added { content: String },
}

impl TokenText {
    fn into_string(self) -> String {
        match self {
            TokenText::Text(s) | TokenText::Added { content: s } => s,
        }
    }
}

/// `chat_template`: one template, or a list of named ones.
#[derive(Deserialize)]
#[serde(untagged)]
enum TemplateField {
    One(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

/// The fields of `tokenizer_config.json` that matter at run time.
#[derive(Deserialize, Default)]
struct TokenizerConfig {
    #[serde(default)]
    bos_token: Option<TokenText>,
    #[serde(default)]
    eos_token: Option<TokenText>,
    #[serde(default)]
    add_bos_token: Option<bool>,
    #[serde(default)]
    clean_up_tokenization_spaces: Option<bool>,
    #[serde(default)]
    chat_template: Option<TemplateField>,
}

/// Tokenizer of a model directory: encode, decode, stream-decode and apply the chat template.
pub struct Tokenizer {
    inner: Arc<HfTokenizer>,
    /// `inner` with special-token matching off: message contents of a chat.
    plain: HfTokenizer,
    specials: SpecialTokens,
    bos: Option<(String, u32)>,
    eos: Option<(String, u32)>,
    add_bos_token: bool,
    clean_up_spaces: bool,
    vocab_size: usize,
    chat_template: Option<ChatTemplate>,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos_token", &self.add_bos_token)
            .field("chat_template", &self.chat_template.is_some())
            .finish()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}

impl Tokenizer {
    /// Loads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json`. Without a
    /// `chat_template` in the config, `dir/chat_template.jinja` is used if it exists (newer
    /// transformers save it there). Errors name the file that failed.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let config = dir.join("tokenizer_config.json");
        let jinja = dir.join("chat_template.jinja");
        Self::from_files(
            &dir.join("tokenizer.json"),
            config.is_file().then_some(config.as_path()),
            jinja.is_file().then_some(jinja.as_path()),
        )
    }

    /// Loads a tokenizer from explicit files: `tokenizer.json`, an optional
    /// `tokenizer_config.json`, and an optional Jinja file used when the config has no
    /// `chat_template`.
    pub fn from_files(
        tokenizer_json: &Path,
        tokenizer_config: Option<&Path>,
        chat_template_file: Option<&Path>,
    ) -> Result<Self> {
        let bytes = read_file(tokenizer_json)?;
        let mut inner = HfTokenizer::from_bytes(&bytes)
            .map_err(|e| Error::model(format!("{}: {e}", tokenizer_json.display())))?;
        // transformers encodes without truncation or padding unless asked for them.
        inner
            .with_truncation(None)
            .map_err(|e| Error::model(format!("{}: {e}", tokenizer_json.display())))?;
        inner.with_padding(None);

        let config: TokenizerConfig = match tokenizer_config {
            Some(path) => serde_json::from_slice(&read_file(path)?)
                .map_err(|e| Error::model(format!("{}: {e}", path.display())))?,
            None => TokenizerConfig::default(),
        };
        let config_name = tokenizer_config
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "tokenizer_config.json".to_owned());

        let lookup = |field: &str, text: Option<TokenText>| -> Result<Option<(String, u32)>> {
            let Some(text) = text.map(TokenText::into_string) else {
                return Ok(None);
            };
            match inner.token_to_id(&text) {
                Some(id) => Ok(Some((text, id))),
                None => Err(Error::model(format!(
                    "{config_name}: {field} {text:?} is not a token of {}",
                    tokenizer_json.display()
                ))),
            }
        };
        let eos = lookup("eos_token", config.eos_token)?;
        let mut bos = lookup("bos_token", config.bos_token)?;

        // The special tokens the post-processor puts before the text, e.g. BOS for
        // `TemplateProcessing { single: "<bos> $A" }`.
        let leading_special = {
            let ids = |special| {
                inner
                    .encode_fast("a", special)
                    .map(|e| e.get_ids().to_vec())
            };
            match (ids(true), ids(false)) {
                (Ok(with), Ok(without))
                    if with.len() > without.len() && with.ends_with(&without) =>
                {
                    with.first().copied()
                }
                _ => None,
            }
        };
        if bos.is_none() && tokenizer_config.is_none() {
            if let Some(id) = leading_special {
                bos = inner.id_to_token(id).map(|t| (t, id));
            }
        }
        let add_bos_token = config.add_bos_token.unwrap_or_else(|| {
            leading_special.is_some() && leading_special == bos.as_ref().map(|b| b.1)
        });

        let vocab_size = inner
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&m| m as usize + 1);

        let source = match config.chat_template {
            Some(TemplateField::One(s)) => Some(s),
            // transformers' named templates: "default" is the one used without a name.
            Some(TemplateField::Named(list)) => list
                .iter()
                .find(|t| t.name == "default")
                .or(list.first())
                .map(|t| t.template.clone()),
            None => match chat_template_file {
                Some(path) => Some(
                    String::from_utf8(read_file(path)?)
                        .map_err(|e| Error::model(format!("{}: {e}", path.display())))?,
                ),
                None => None,
            },
        };
        let chat_template = match source {
            Some(src) => Some(
                ChatTemplate::new(
                    &src,
                    bos.as_ref().map_or("", |b| b.0.as_str()),
                    eos.as_ref().map_or("", |e| e.0.as_str()),
                )
                .map_err(|e| Error::model(format!("{config_name}: {e}")))?,
            ),
            None => None,
        };

        let mut plain = inner.clone();
        plain.set_encode_special_tokens(true);
        let specials = SpecialTokens::new(
            inner
                .get_added_tokens_decoder()
                .into_iter()
                .filter(|(_, t)| t.special)
                .map(|(id, t)| (id, t.content))
                .collect(),
        )?;
        Ok(Tokenizer {
            inner: Arc::new(inner),
            plain,
            specials,
            bos,
            eos,
            add_bos_token,
            clean_up_spaces: config.clean_up_tokenization_spaces.unwrap_or(false),
            vocab_size,
            chat_template,
        })
    }

    /// Token ids of `text`. Special-token text inside `text` (e.g. `<｜User｜>`) becomes that
    /// special token, as in transformers. `add_bos` puts the BOS id once at the start (when the
    /// tokenizer has one); the post-processor of `tokenizer.json` is not applied.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| Error::invalid(format!("tokenizer: cannot encode text: {e}")))?;
        let ids = encoding.get_ids();
        let mut out = Vec::with_capacity(ids.len() + 1);
        if add_bos {
            if let Some((_, id)) = &self.bos {
                out.push(*id);
            }
        }
        out.extend_from_slice(ids);
        Ok(out)
    }

    /// Text of `ids`. Never fails: ids outside the tokenizer's vocabulary (the model's
    /// embedding table is larger) are skipped, and bytes that do not form UTF-8 are rendered
    /// as U+FFFD. `skip_special` drops special tokens such as BOS/EOS.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        decode_lossy(&self.inner, ids, skip_special, self.clean_up_spaces)
    }

    /// An incremental decoder for generated ids that skips special tokens, as DeepSeek's demo
    /// decodes. See [`TokenStreamDecoder`].
    pub fn decoder_stream(&self) -> TokenStreamDecoder {
        self.decoder_stream_with(true)
    }

    /// An incremental decoder; `skip_special` as in [`Tokenizer::decode`].
    pub fn decoder_stream_with(&self, skip_special: bool) -> TokenStreamDecoder {
        TokenStreamDecoder {
            inner: Arc::clone(&self.inner),
            skip_special,
            clean_up_spaces: self.clean_up_spaces,
            ids: Vec::new(),
            read: 0,
        }
    }

    /// Id of the BOS token (`bos_token` of `tokenizer_config.json`; without a config, the
    /// special token the post-processor puts first, if any).
    pub fn bos_id(&self) -> Option<u32> {
        self.bos.as_ref().map(|b| b.1)
    }

    /// Id of the EOS token (`eos_token` of `tokenizer_config.json`).
    pub fn eos_id(&self) -> Option<u32> {
        self.eos.as_ref().map(|e| e.1)
    }

    /// Text of the BOS token.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos.as_ref().map(|b| b.0.as_str())
    }

    /// Text of the EOS token.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos.as_ref().map(|e| e.0.as_str())
    }

    /// Whether raw (non-chat) prompts get BOS: `add_bos_token` of `tokenizer_config.json`, or,
    /// without it, whether the post-processor of `tokenizer.json` adds the BOS token.
    pub fn add_bos_token(&self) -> bool {
        self.add_bos_token
    }

    /// One past the largest id the tokenizer defines (model vocabulary and added tokens); ids at
    /// or above it have no text.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Id of a token given its exact text (added tokens included).
    pub fn token_to_id(&self, s: &str) -> Option<u32> {
        self.inner.token_to_id(s)
    }

    /// Text of a token id, if the tokenizer defines it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The chat template of `tokenizer_config.json`, if any.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// Renders `messages` with the chat template and encodes the result without adding special
    /// tokens (the template writes the BOS text itself). Message contents are text: special-token
    /// text inside them (`<｜Assistant｜>`, …) is encoded as ordinary text, so only the template
    /// inserts control tokens; for every other conversation the ids are transformers'
    /// `apply_chat_template`'s. See [`Tokenizer::apply_chat_with`] for transformers' behaviour.
    pub fn apply_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        self.apply_chat_with(
            messages,
            ChatOptions {
                add_generation_prompt,
                ..ChatOptions::default()
            },
        )
    }

    /// [`Tokenizer::apply_chat`] with options; `allow_special_tokens_in_content` restores
    /// transformers' behaviour, where special-token text in a message becomes that token.
    pub fn apply_chat_with(
        &self,
        messages: &[ChatMessage],
        options: ChatOptions,
    ) -> Result<Vec<u32>> {
        let template = self.chat_template.as_ref().ok_or_else(|| {
            Error::invalid("tokenizer: tokenizer_config.json has no chat_template")
        })?;
        let escaped = if options.allow_special_tokens_in_content {
            None
        } else {
            self.specials.escape_messages(messages)
        };
        let Some(escaped) = escaped else {
            let text = template.render(messages, options.add_generation_prompt)?;
            return self.encode(&text, false);
        };
        let text = template.render(&escaped, options.add_generation_prompt)?;
        self.specials.encode_rendered(&text, |piece| {
            self.plain
                .encode_fast(piece, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| Error::invalid(format!("tokenizer: cannot encode text: {e}")))
        })
    }
}

/// transformers' `clean_up_tokenization`: removes the space before some punctuation and
/// English contractions.
fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

fn decode_lossy(tok: &HfTokenizer, ids: &[u32], skip_special: bool, clean_up: bool) -> String {
    // `tokenizers` already skips ids it has no token for; a decoder error (none of the
    // DeepSeek decoders produce one) falls back to decoding token by token.
    let text = match tok.decode(ids, skip_special) {
        Ok(s) => s,
        Err(_) => ids
            .iter()
            .filter_map(|&id| tok.decode(&[id], skip_special).ok())
            .collect(),
    };
    if clean_up {
        clean_up_tokenization(&text)
    } else {
        text
    }
}

/// Incremental decoding of generated ids.
///
/// Byte-level BPE can split one character over several tokens, and some decoders change a
/// token's text depending on what precedes it. [`push`](Self::push) therefore decodes the ids
/// since the last emitted text together with the ids that produced it, and emits only the new
/// suffix, and only once it does not end in an incomplete character (U+FFFD).
/// [`finish`](Self::finish) emits whatever is still held back.
pub struct TokenStreamDecoder {
    inner: Arc<HfTokenizer>,
    skip_special: bool,
    clean_up_spaces: bool,
    /// Ids of the last emitted chunk (`..read`) followed by ids not yet emitted (`read..`).
    ids: Vec<u32>,
    read: usize,
}

impl fmt::Debug for TokenStreamDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStreamDecoder")
            .field("skip_special", &self.skip_special)
            .field("ids", &self.ids)
            .field("read", &self.read)
            .finish()
    }
}

impl TokenStreamDecoder {
    fn decode(&self, ids: &[u32]) -> String {
        decode_lossy(&self.inner, ids, self.skip_special, self.clean_up_spaces)
    }

    /// The text after the prefix decoded from `..read`, if any.
    fn pending(&self) -> (String, String) {
        let prefix = self.decode(&self.ids[..self.read]);
        let full = self.decode(&self.ids);
        (prefix, full)
    }

    /// Adds one generated id; returns the text it completes, if any.
    pub fn push(&mut self, id: u32) -> Option<String> {
        self.ids.push(id);
        let (prefix, full) = self.pending();
        if full.len() <= prefix.len() || full.ends_with('\u{FFFD}') {
            return None;
        }
        let new = new_suffix(&prefix, &full);
        // The ids just emitted become the context of the next chunk.
        self.ids.drain(..self.read);
        self.read = self.ids.len();
        Some(new)
    }

    /// Emits the text still held back (an incomplete character is rendered as U+FFFD) and
    /// resets the decoder.
    pub fn finish(&mut self) -> Option<String> {
        let (prefix, full) = self.pending();
        self.reset();
        (full.len() > prefix.len()).then(|| new_suffix(&prefix, &full))
    }

    /// Forgets all ids pushed so far.
    pub fn reset(&mut self) {
        self.ids.clear();
        self.read = 0;
    }
}

/// `full` minus its longest common prefix with `prefix` (all of `prefix`, for the decoders
/// that extend text monotonically).
fn new_suffix(prefix: &str, full: &str) -> String {
    if let Some(rest) = full.strip_prefix(prefix) {
        return rest.to_owned();
    }
    let common = prefix
        .char_indices()
        .zip(full.chars())
        .find(|((_, a), b)| a != b)
        .map_or(prefix.len().min(full.len()), |((i, _), _)| i);
    full[common..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_up_matches_transformers() {
        assert_eq!(
            clean_up_tokenization("Hello , world ! I 'm here . Isn 't it ?"),
            "Hello, world! I'm here. Isn 't it?"
        );
    }

    #[test]
    fn new_suffix_handles_rewrites() {
        assert_eq!(new_suffix("ab", "abc"), "c");
        assert_eq!(new_suffix("a\u{FFFD}", "aé!"), "é!");
        assert_eq!(new_suffix("", "x"), "x");
    }
}
