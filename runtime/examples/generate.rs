//! Embedding Concord in a Rust program: load a model, stream a greedy continuation to stdout.
//!
//!     cargo run --release -p concord-runtime --example generate -- [MODEL_DIR] [PROMPT]
//!
//! Without arguments it uses the bundled demo model and one of the openings it memorised.

use std::io::Write;

use concord_runtime::{open_backend, text::Tokenizer, GenerateParams, LoadOptions, Model};

fn main() -> concord_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(Into::into)
        .unwrap_or_else(concord_runtime::demo_model_dir);
    let text = args
        .next()
        .unwrap_or_else(|| "It was the best of times,".to_string());

    let model = Model::load(
        &dir,
        open_backend("cpu")?,
        &LoadOptions::default(),
        &mut |_, _| true,
    )?;
    let tokenizer = Tokenizer::from_dir(&dir)?;
    let prompt = tokenizer.encode(&text, true)?;
    let params = GenerateParams {
        max_new_tokens: 48,
        stop_tokens: model.config().eos_token_ids.clone(),
        ..GenerateParams::default()
    };
    let mut out = std::io::stdout().lock();
    let mut stream = tokenizer.decoder_stream();
    write!(out, "{text}").ok();
    for token in model.generate(&prompt, params)? {
        if let Some(piece) = stream.push(token?) {
            write!(out, "{piece}").ok();
            out.flush().ok();
        }
    }
    writeln!(out).ok();
    Ok(())
}
