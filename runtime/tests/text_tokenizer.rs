//! `Tokenizer` over a small byte-level BPE written to a temporary model directory. Expected ids
//! are given as token strings (looked up in the test vocabulary), derived by hand from the BPE
//! merges; expected text comes from the UTF-8 of the inputs.

mod text_support;

use concord_core::Error;
use concord_runtime::text::{ChatMessage, Tokenizer};
use serde_json::json;
use text_support::{deepseek_config, model_dir, ASSISTANT, BOS, EOS, USER};

fn tokenizer(name: &str) -> Tokenizer {
    Tokenizer::from_dir(&model_dir(name, Some(deepseek_config()))).unwrap()
}

fn ids(tok: &Tokenizer, tokens: &[&str]) -> Vec<u32> {
    tokens
        .iter()
        .map(|t| {
            tok.token_to_id(t)
                .unwrap_or_else(|| panic!("no token {t:?}"))
        })
        .collect()
}

#[test]
fn special_ids_and_vocab_size() {
    let tok = tokenizer("special");
    assert_eq!(tok.bos_id(), Some(0));
    assert_eq!(tok.eos_id(), Some(1));
    assert_eq!(tok.bos_token(), Some(BOS));
    assert_eq!(tok.eos_token(), Some(EOS));
    assert!(tok.add_bos_token());
    // 3 specials + 256 byte symbols + 6 merges + User + Assistant.
    assert_eq!(tok.vocab_size(), 267);
    assert_eq!(tok.token_to_id(USER), Some(265));
    assert_eq!(tok.token_to_id(ASSISTANT), Some(266));
    assert_eq!(tok.id_to_token(0).as_deref(), Some(BOS));
    assert!(tok.chat_template().is_some());
}

#[test]
fn encode_with_and_without_bos() {
    let tok = tokenizer("encode");
    let body = ids(&tok, &["hello", "Ġwo", "r", "l", "d", "Ã", "©"]);
    assert_eq!(tok.encode("hello worldé", false).unwrap(), body);
    let mut with_bos = vec![0];
    with_bos.extend(&body);
    // BOS once, although the post-processor of tokenizer.json would also add it.
    assert_eq!(tok.encode("hello worldé", true).unwrap(), with_bos);
    assert_eq!(tok.encode("", true).unwrap(), vec![0]);
    assert_eq!(tok.encode("", false).unwrap(), Vec::<u32>::new());
}

#[test]
fn special_token_text_is_recognised() {
    let tok = tokenizer("special-text");
    let got = tok
        .encode(&format!("{BOS}{USER}hello{ASSISTANT}"), false)
        .unwrap();
    assert_eq!(got, vec![0, 265, tok.token_to_id("hello").unwrap(), 266]);
}

#[test]
fn decode_skips_specials_and_unknown_ids() {
    let tok = tokenizer("decode");
    let mut v = tok.encode("hello worldé", true).unwrap();
    v.push(1);
    assert_eq!(tok.decode(&v, false), format!("{BOS}hello worldé{EOS}"));
    assert_eq!(tok.decode(&v, true), "hello worldé");
    // Ids past the tokenizer's vocabulary (the model's is larger) render as nothing.
    v.insert(2, 129_279);
    v.push(100_000);
    assert_eq!(tok.decode(&v, true), "hello worldé");
    // A lone first byte of a two-byte character.
    assert_eq!(tok.decode(&ids(&tok, &["Ã"]), true), "\u{FFFD}");
    assert_eq!(tok.decode(&[], true), "");
}

#[test]
fn stream_decoder_holds_back_split_characters() {
    let tok = tokenizer("stream");
    let text = "hello wé😀 world!";
    let v = tok.encode(text, true).unwrap();
    let mut stream = tok.decoder_stream();
    let mut out = String::new();
    let mut chunks = Vec::new();
    for &id in &v {
        let chunk = stream.push(id);
        if let Some(c) = &chunk {
            assert!(!c.contains('\u{FFFD}'), "{c:?}");
            out.push_str(c);
        }
        chunks.push(chunk);
    }
    assert_eq!(stream.finish(), None);
    assert_eq!(out, text);
    // BOS (skipped) yields nothing; "é" is two tokens and the emoji four, so 1 + 3 pushes
    // complete no text.
    assert_eq!(chunks.iter().filter(|c| c.is_none()).count(), 1 + 1 + 3);
    assert_eq!(chunks[1].as_deref(), Some("hello"));

    // Without skipping specials the BOS text is emitted.
    let mut stream = tok.decoder_stream_with(false);
    let got: String = v.iter().filter_map(|&id| stream.push(id)).collect();
    assert_eq!(got, format!("{BOS}{text}"));

    // A character cut off at the end is flushed lossily by `finish`.
    let mut stream = tok.decoder_stream();
    assert_eq!(
        stream.push(tok.token_to_id("hello").unwrap()).as_deref(),
        Some("hello")
    );
    assert_eq!(stream.push(tok.token_to_id("Ã").unwrap()), None);
    assert_eq!(stream.push(1), None);
    assert_eq!(stream.finish().as_deref(), Some("\u{FFFD}"));
    assert_eq!(stream.finish(), None);
    // Unknown ids are skipped.
    assert_eq!(stream.push(200_000), None);
    assert_eq!(
        stream.push(tok.token_to_id("hello").unwrap()).as_deref(),
        Some("hello")
    );
}

#[test]
fn apply_chat_renders_then_encodes_without_special_tokens() {
    let tok = tokenizer("chat");
    let msgs = vec![ChatMessage::system("hello"), ChatMessage::user("hello")];
    let rendered = tok.chat_template().unwrap().render(&msgs, true).unwrap();
    assert_eq!(rendered, format!("{BOS}hello{USER}hello{ASSISTANT}"));
    let hello = tok.token_to_id("hello").unwrap();
    let got = tok.apply_chat(&msgs, true).unwrap();
    assert_eq!(got, vec![0, hello, 265, hello, 266]);
    assert_eq!(got, tok.encode(&rendered, false).unwrap());
}

#[test]
fn config_variants() {
    // Plain-string special tokens and a list of named templates: "default" is used.
    let mut config = deepseek_config();
    config["bos_token"] = json!(BOS);
    config["eos_token"] = json!(EOS);
    config["chat_template"] = json!([
        {"name": "tool_use", "template": "TOOLS"},
        {"name": "default", "template": "{{ bos_token }}D{{ eos_token }}"}
    ]);
    let tok = Tokenizer::from_dir(&model_dir("variants", Some(config))).unwrap();
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(0), Some(1)));
    assert_eq!(
        tok.chat_template().unwrap().render(&[], false).unwrap(),
        format!("{BOS}D{EOS}")
    );

    // No chat template at all.
    let mut config = deepseek_config();
    config.as_object_mut().unwrap().remove("chat_template");
    let tok = Tokenizer::from_dir(&model_dir("no-template", Some(config))).unwrap();
    assert!(tok.chat_template().is_none());
    assert!(matches!(
        tok.apply_chat(&[ChatMessage::user("x")], true),
        Err(Error::InvalidArgument(_))
    ));

    // A chat_template.jinja file next to a config without one.
    let mut config = deepseek_config();
    config.as_object_mut().unwrap().remove("chat_template");
    let dir = model_dir("jinja-file", Some(config));
    std::fs::write(
        dir.join("chat_template.jinja"),
        "J{{ messages[0].content }}",
    )
    .unwrap();
    let tok = Tokenizer::from_dir(&dir).unwrap();
    assert_eq!(
        tok.chat_template()
            .unwrap()
            .render(&[ChatMessage::user("x")], false)
            .unwrap(),
        "Jx"
    );
}

#[test]
fn without_config_bos_comes_from_the_post_processor() {
    let tok = Tokenizer::from_dir(&model_dir("no-config", None)).unwrap();
    assert_eq!(tok.bos_id(), Some(0));
    assert_eq!(tok.eos_id(), None);
    assert!(tok.add_bos_token());
    assert!(tok.chat_template().is_none());
    assert_eq!(tok.encode("hello", true).unwrap()[0], 0);
}

#[test]
fn errors_name_the_file() {
    let missing = text_support::temp_dir("missing");
    let err = Tokenizer::from_dir(&missing).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json"), "{err}");

    let dir = model_dir("bad-config", None);
    std::fs::write(dir.join("tokenizer_config.json"), "{ not json").unwrap();
    let err = Tokenizer::from_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("tokenizer_config.json"), "{err}");

    let dir = text_support::temp_dir("bad-tokenizer");
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
    let err = Tokenizer::from_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json"), "{err}");

    let mut config = deepseek_config();
    config["bos_token"] = json!("<nope>");
    let err = Tokenizer::from_dir(&model_dir("bad-bos", Some(config)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenizer_config.json") && err.contains("<nope>"),
        "{err}"
    );

    let mut config = deepseek_config();
    config["chat_template"] = json!("{% if %}");
    let err = Tokenizer::from_dir(&model_dir("bad-template", Some(config)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokenizer_config.json"), "{err}");
}
