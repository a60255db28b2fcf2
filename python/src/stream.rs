//! `concord.TextStream`: the pieces of text of one generation, produced as the tokens come
//! (the GIL is released while each token is computed). `Model.generate` drains the same
//! stream, so the pieces always join to what `generate` returns.

use std::sync::{Arc, Mutex};

use concord_runtime::text::{TokenStreamDecoder, Tokenizer};
use concord_runtime::{GenerateParams, Generation, Model};
use pyo3::prelude::*;
use self_cell::self_cell;

use crate::errors::{guarded, ConcordError};
use concord_runtime::text::StopStringFilter;

self_cell!(
    /// A generation together with the model it borrows.
    struct OwnedGeneration {
        owner: Arc<Model>,
        #[covariant]
        dependent: Generation,
    }
);

/// Tokens to text: the generation, its incremental decoder and the stop-string scan.
pub struct TextGeneration {
    generation: OwnedGeneration,
    decoder: TokenStreamDecoder,
    stops: StopStringFilter,
    done: bool,
}

impl TextGeneration {
    /// Starts generating after `prompt` (token ids).
    pub fn start(
        model: Arc<Model>,
        tokenizer: &Tokenizer,
        prompt: &[u32],
        params: GenerateParams,
        stops: Vec<String>,
    ) -> concord_core::Result<Self> {
        let generation = OwnedGeneration::try_new(model, |m| m.generate(prompt, params))?;
        Ok(TextGeneration {
            generation,
            decoder: tokenizer.decoder_stream(),
            stops: StopStringFilter::new(stops),
            done: false,
        })
    }

    /// The next non-empty piece of text, or `None` once generation has ended (a stop token,
    /// a stop string, the token budget or the context).
    pub fn next_piece(&mut self) -> concord_core::Result<Option<String>> {
        while !self.done {
            let token = self.generation.with_dependent_mut(|_, g| g.next());
            let scanned = match token {
                Some(token) => match self.decoder.push(token?) {
                    Some(piece) => self.stops.push(&piece),
                    None => continue,
                },
                None => {
                    self.done = true;
                    let mut rest = self.decoder.finish().unwrap_or_default();
                    let scanned = self.stops.push(&rest);
                    rest = scanned.text;
                    if !scanned.stopped {
                        rest.push_str(&self.stops.finish());
                    }
                    return Ok((!rest.is_empty()).then_some(rest));
                }
            };
            self.done = scanned.stopped;
            if !scanned.text.is_empty() {
                return Ok(Some(scanned.text));
            }
        }
        Ok(None)
    }

    /// All the text still to come.
    pub fn collect_text(&mut self) -> concord_core::Result<String> {
        let mut text = String::new();
        while let Some(piece) = self.next_piece()? {
            text.push_str(&piece);
        }
        Ok(text)
    }
}

/// An iterator over the pieces of generated text (`for piece in model.stream(prompt): ...`).
/// Each piece is one or more whole characters; joined, they equal `Model.generate`'s result
/// for the same arguments.
#[pyclass(module = "concord._concord", name = "TextStream")]
pub struct TextStream {
    // A stream may be advanced from any thread, one at a time.
    state: Mutex<TextGeneration>,
}

impl TextStream {
    pub fn new(generation: TextGeneration) -> Self {
        TextStream {
            state: Mutex::new(generation),
        }
    }
}

#[pymethods]
impl TextStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next piece of text; the GIL is released while tokens are computed.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        py.detach(|| {
            let mut state = self.state.lock().map_err(|_| {
                ConcordError::new_err("this stream failed earlier and cannot go on")
            })?;
            guarded(|| state.next_piece())
        })
    }
}
