//! Hostile chat templates and conversations: compiling a template and rendering it, and
//! applying the demo model's own template (content escaping, splitting at the template's
//! control tokens, encoding) in both content modes, must return — never panic or hang.
//!
//! Input: template source bytes, a 0xFF byte, then the conversation as JSON (a list of
//! messages); a conversation that does not parse becomes one user message holding those bytes
//! as text. The tokenizer is loaded once (building it per input would spend the run compiling
//! its pre-tokenizer regexes); what varies is what a hostile checkpoint or user controls.
#![no_main]

use std::sync::OnceLock;

use concord_runtime::text::{ChatMessage, ChatOptions, ChatTemplate, Tokenizer};
use libfuzzer_sys::fuzz_target;

fn demo_tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/demo");
        Tokenizer::from_dir(std::path::Path::new(dir)).expect("the demo model's tokenizer")
    })
}

fuzz_target!(|data: &[u8]| {
    let (template, conversation) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let messages: Vec<ChatMessage> = serde_json::from_slice(conversation)
        .unwrap_or_else(|_| vec![ChatMessage::user(String::from_utf8_lossy(conversation))]);
    if let Ok(source) = std::str::from_utf8(template) {
        if let Ok(t) = ChatTemplate::new(source, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>") {
            for add_generation_prompt in [false, true] {
                let _ = t.render(&messages, add_generation_prompt);
            }
        }
    }
    let tok = demo_tokenizer();
    for allow in [false, true] {
        for add_generation_prompt in [false, true] {
            let _ = tok.apply_chat_with(
                &messages,
                ChatOptions {
                    add_generation_prompt,
                    allow_special_tokens_in_content: allow,
                },
            );
        }
    }
});
