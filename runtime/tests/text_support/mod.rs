//! Shared by the `text_*` integration tests: DeepSeek-V3 chat templates and a small byte-level
//! BPE tokenizer written to a temporary model directory.
#![allow(dead_code)]

use std::path::PathBuf;

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::Tokenizer as HfTokenizer;

pub const BOS: &str = "<｜begin▁of▁sentence｜>";
pub const EOS: &str = "<｜end▁of▁sentence｜>";
pub const PAD: &str = "<｜▁pad▁｜>";
pub const USER: &str = "<｜User｜>";
pub const ASSISTANT: &str = "<｜Assistant｜>";

/// The chat template of the December 2024 DeepSeek-V3 `tokenizer_config.json` skeleton: the
/// last system message is the system prompt, tool calls are recognised by `content is none`.
pub const DEEPSEEK_V3_TEMPLATE: &str = r#"{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}{%- else %}{{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"#;

/// The V3-0324 template: system messages joined with a blank line, `'tool_calls' in message`.
pub const DEEPSEEK_V3_0324_TEMPLATE: &str = r#"{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' in message %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls'] %}{%- if not ns.is_first %}{%- if message['content'] is none %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- endif %}{%- set ns.is_first = true -%}{%- else %}{{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- endif %}{%- endfor %}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' not in message %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"#;

/// Merges of the test BPE, in rank order.
const MERGES: [(&str, &str); 6] = [
    ("h", "e"),
    ("l", "l"),
    ("he", "ll"),
    ("hell", "o"),
    ("Ġ", "w"),
    ("Ġw", "o"),
];

/// `tokenizer.json` of a byte-level BPE with the DeepSeek special tokens at ids 0 (BOS), 1 (EOS),
/// 2 (pad), the 256 byte symbols after them, a few merges, `<｜User｜>`/`<｜Assistant｜>` as added
/// special tokens after those, and a post-processor that adds BOS (as DeepSeek's does).
pub fn tokenizer_json() -> serde_json::Value {
    let mut vocab = serde_json::Map::new();
    let mut next = 0u32;
    let mut add = |vocab: &mut serde_json::Map<String, serde_json::Value>, s: String| {
        vocab.insert(s, next.into());
        next += 1;
        next - 1
    };
    for s in [BOS, EOS, PAD] {
        add(&mut vocab, s.to_owned());
    }
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    for c in alphabet {
        add(&mut vocab, c.to_string());
    }
    for (a, b) in MERGES {
        add(&mut vocab, format!("{a}{b}"));
    }
    let user = add(&mut vocab, USER.to_owned());
    let assistant = add(&mut vocab, ASSISTANT.to_owned());
    let added = |id: u32, content: &str| {
        serde_json::json!({
            "id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        })
    };
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [
            added(0, BOS), added(1, EOS), added(2, PAD), added(user, USER),
            added(assistant, ASSISTANT)
        ],
        "normalizer": null,
        "pre_tokenizer": {
            "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": BOS, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}}
            ],
            "pair": [
                {"SpecialToken": {"id": BOS, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": BOS, "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}}
            ],
            "special_tokens": {BOS: {"id": BOS, "ids": [0], "tokens": [BOS]}}
        },
        "decoder": {
            "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true
        },
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()
        }
    })
}

/// The tokenizer of [`tokenizer_json`], loaded by the `tokenizers` crate itself.
pub fn build_hf_tokenizer() -> HfTokenizer {
    HfTokenizer::from_bytes(tokenizer_json().to_string()).expect("test tokenizer.json")
}

/// A fresh, empty directory under the system temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("concord-text-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Writes `tokenizer.json` (from [`build_hf_tokenizer`]) and, if given, `tokenizer_config.json`
/// into a fresh directory.
pub fn model_dir(name: &str, config: Option<serde_json::Value>) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json().to_string()).unwrap();
    if let Some(config) = config {
        std::fs::write(
            dir.join("tokenizer_config.json"),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
    }
    dir
}

/// A DeepSeek-like `tokenizer_config.json` (AddedToken dicts for BOS/EOS, the V3 template).
pub fn deepseek_config() -> serde_json::Value {
    let added = |s: &str| {
        serde_json::json!({
            "__type": "AddedToken", "content": s, "lstrip": false, "normalized": true,
            "rstrip": false, "single_word": false
        })
    };
    serde_json::json!({
        "add_bos_token": true,
        "add_eos_token": false,
        "bos_token": added(BOS),
        "eos_token": added(EOS),
        "pad_token": added(EOS),
        "clean_up_tokenization_spaces": false,
        "legacy": true,
        "tokenizer_class": "LlamaTokenizerFast",
        "unk_token": null,
        "chat_template": DEEPSEEK_V3_TEMPLATE,
    })
}
