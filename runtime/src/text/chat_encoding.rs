//! Chat prompts whose message contents are text: only the chat template inserts control tokens.
//!
//! transformers renders the template and encodes the whole prompt with special-token matching,
//! so `<｜Assistant｜>` typed inside a user message becomes the Assistant control token and a
//! user can forge turns. Here every special-token occurrence inside the messages is swapped for
//! a placeholder before rendering (`U+FDD0 <index> U+FDD1`; U+FDD0..U+FDEF are noncharacters,
//! reserved for such internal use). When no placeholder was needed — every ordinary
//! conversation — the prompt is encoded exactly as transformers does, so the ids are unchanged.
//! Otherwise the rendered prompt is cut at the special tokens the template wrote; each piece in
//! between, placeholders turned back into the token text they stand for, is encoded with
//! special-token matching off (`encode_special_tokens`, transformers' `split_special_tokens`),
//! and the template's tokens keep their ids.
//!
//! Known limits: a special token whose text the template assembles out of two different message
//! strings (say the end of `name` and the start of `content`) is not caught; the template's own
//! special tokens are found by exact text (DeepSeek's have no `lstrip`/`rstrip`/`single_word`).

use aho_corasick::{AhoCorasick, MatchKind};
use concord_core::{Error, Result};
use serde_json::Value as Json;

use super::chat_template::ChatMessage;

/// How [`Tokenizer::apply_chat_with`](super::Tokenizer::apply_chat_with) builds the prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatOptions {
    /// End with the assistant prefix (DeepSeek-V3: `<｜Assistant｜>`).
    pub add_generation_prompt: bool,
    /// Let special-token text inside messages become control tokens, as transformers'
    /// `apply_chat_template` does. Off by default: with it, a user can forge roles.
    pub allow_special_tokens_in_content: bool,
}

/// Opens a placeholder; a decimal index into [`SpecialTokens`] follows, then [`CLOSE`].
const OPEN: char = '\u{FDD0}';
const CLOSE: char = '\u{FDD1}';

/// The special added tokens of a tokenizer, found in text by leftmost-longest match (as the
/// `tokenizers` crate splits on added tokens).
pub(super) struct SpecialTokens {
    matcher: Option<AhoCorasick>,
    texts: Vec<String>,
    ids: Vec<u32>,
}

impl SpecialTokens {
    /// `tokens`: (id, text) of every special added token.
    pub(super) fn new(mut tokens: Vec<(u32, String)>) -> Result<Self> {
        tokens.retain(|(_, text)| !text.is_empty());
        tokens.sort();
        let (ids, texts): (Vec<u32>, Vec<String>) = tokens.into_iter().unzip();
        let matcher = if texts.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&texts)
                    .map_err(|e| Error::model(format!("tokenizer: special tokens: {e}")))?,
            )
        };
        Ok(SpecialTokens {
            matcher,
            texts,
            ids,
        })
    }

    /// `s` with every special-token occurrence replaced by its placeholder; `None` when there is
    /// none.
    fn escape_str(&self, s: &str) -> Option<String> {
        let matcher = self.matcher.as_ref()?;
        let mut found = matcher.find_iter(s).peekable();
        found.peek()?;
        let mut out = String::with_capacity(s.len());
        let mut at = 0;
        for m in found {
            out.push_str(&s[at..m.start()]);
            out.push(OPEN);
            out.push_str(&m.pattern().as_usize().to_string());
            out.push(CLOSE);
            at = m.end();
        }
        out.push_str(&s[at..]);
        Some(out)
    }

    /// Escapes every string (keys included) of a JSON value; whether anything changed.
    fn escape_json(&self, v: &mut Json) -> bool {
        match v {
            Json::String(s) => self.escape_in_place(s),
            Json::Array(items) => items
                .iter_mut()
                .fold(false, |any, item| self.escape_json(item) | any),
            Json::Object(map) => {
                let mut any = false;
                let old = std::mem::take(map);
                for (key, mut value) in old {
                    any |= self.escape_json(&mut value);
                    let key = match self.escape_str(&key) {
                        Some(k) => {
                            any = true;
                            k
                        }
                        None => key,
                    };
                    map.insert(key, value);
                }
                any
            }
            _ => false,
        }
    }

    fn escape_in_place(&self, s: &mut String) -> bool {
        match self.escape_str(s) {
            Some(escaped) => {
                *s = escaped;
                true
            }
            None => false,
        }
    }

    /// The messages with every string escaped, or `None` when no string holds special-token
    /// text.
    pub(super) fn escape_messages(&self, messages: &[ChatMessage]) -> Option<Vec<ChatMessage>> {
        let mut escaped = messages.to_vec();
        let mut any = false;
        for m in &mut escaped {
            any |= self.escape_in_place(&mut m.role);
            if let Some(content) = &mut m.content {
                any |= self.escape_in_place(content);
            }
            if let Some(calls) = &mut m.tool_calls {
                any |= self.escape_json(calls);
            }
            let mut extra = Json::Object(std::mem::take(&mut m.extra));
            any |= self.escape_json(&mut extra);
            if let Json::Object(map) = extra {
                m.extra = map;
            }
        }
        any.then_some(escaped)
    }

    /// Cuts a rendered prompt at the special tokens in it (the template's own: the messages'
    /// are placeholders) and encodes it: `encode_text` for each piece between them, with
    /// placeholders restored, and the token's id for each special token.
    pub(super) fn encode_rendered(
        &self,
        rendered: &str,
        mut encode_text: impl FnMut(&str) -> Result<Vec<u32>>,
    ) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        let mut text_piece = |piece: &str, ids: &mut Vec<u32>| -> Result<()> {
            let text = self.restore(piece);
            if !text.is_empty() {
                ids.extend(encode_text(&text)?);
            }
            Ok(())
        };
        let mut at = 0;
        if let Some(matcher) = &self.matcher {
            for m in matcher.find_iter(rendered) {
                text_piece(&rendered[at..m.start()], &mut ids)?;
                ids.push(self.ids[m.pattern().as_usize()]);
                at = m.end();
            }
        }
        text_piece(&rendered[at..], &mut ids)?;
        Ok(ids)
    }

    /// `s` with each well-formed placeholder replaced by the text of its token; anything else
    /// (including a placeholder the template cut in two) stays as it is.
    fn restore(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(open) = rest.find(OPEN) {
            out.push_str(&rest[..open]);
            let after = &rest[open + OPEN.len_utf8()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let token = after[..digits]
                .parse::<usize>()
                .ok()
                .and_then(|i| self.texts.get(i))
                .filter(|_| after[digits..].starts_with(CLOSE));
            match token {
                Some(text) => {
                    out.push_str(text);
                    rest = &after[digits + CLOSE.len_utf8()..];
                }
                None => {
                    out.push(OPEN);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specials() -> SpecialTokens {
        SpecialTokens::new(vec![
            (7, "<A>".to_owned()),
            (3, "<AB>".to_owned()),
            (9, "<U>".to_owned()),
        ])
        .unwrap()
    }

    #[test]
    fn escape_then_restore_round_trips() {
        let s = specials();
        let text = "x<AB>y<A>\u{FDD0}9<U";
        let escaped = s.escape_str(text).unwrap();
        // Ids sorted: <AB> is 0, <A> is 1; the stray U+FDD0 and the partial "<U" stay as text.
        assert_eq!(escaped, "x\u{FDD0}0\u{FDD1}y\u{FDD0}1\u{FDD1}\u{FDD0}9<U");
        assert_eq!(s.restore(&escaped), text);
        assert_eq!(s.escape_str("plain <B> text"), None);
    }

    #[test]
    fn only_the_template_tokens_are_special() {
        let s = specials();
        let msgs = vec![ChatMessage::user("hi<U>there<AB>")];
        let escaped = s.escape_messages(&msgs).unwrap();
        let rendered = format!("<A>{}<U>", escaped[0].content.as_deref().unwrap());
        // Text pieces are encoded as their byte count, to see where they are cut.
        let ids = s
            .encode_rendered(&rendered, |t| Ok(vec![1000 + t.len() as u32]))
            .unwrap();
        assert_eq!(ids, vec![7, 1000 + "hi<U>there<AB>".len() as u32, 9]);
    }
}
