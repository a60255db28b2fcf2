//! Arbitrary `tokenizer_config.json` bytes and a conversation: loading the tokenizer and
//! applying the chat template (both content modes) must return, never panic or hang.
//!
//! Input: config bytes, a 0xFF byte, then the conversation as JSON (a list of messages); a
//! conversation that does not parse becomes one user message holding those bytes as text.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use concord_runtime::text::{ChatMessage, ChatOptions, Tokenizer};
use libfuzzer_sys::fuzz_target;

/// A scratch directory holding the fixture's `tokenizer.json` and the config under test.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("concord-fuzz-chat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/demo/tokenizer.json");
        std::fs::copy(src, dir.join("tokenizer.json")).expect("copy tokenizer.json");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let (config, conversation) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let dir = dir();
    let config_path = dir.join("tokenizer_config.json");
    std::fs::write(&config_path, config).expect("write config");
    let Ok(tok) = Tokenizer::from_files(&dir.join("tokenizer.json"), Some(&config_path), None)
    else {
        return;
    };
    let messages: Vec<ChatMessage> = serde_json::from_slice(conversation)
        .unwrap_or_else(|_| vec![ChatMessage::user(String::from_utf8_lossy(conversation))]);
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
