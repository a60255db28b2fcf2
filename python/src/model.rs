//! `concord.Model`: a checkpoint loaded on a backend, with its tokenizer.

use std::path::PathBuf;
use std::sync::Arc;

use concord_core::Error;
use concord_runtime::text::Tokenizer;
use concord_runtime::{GenerateParams, LoadOptions, LogitRows, Model, Precision};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;

use crate::errors::guarded;
use crate::stream::{TextGeneration, TextStream};

/// A DeepSeek-V3-architecture model loaded from a Hugging Face checkpoint directory, with its
/// tokenizer. Thread-safe: several threads may generate from one model at once.
#[pyclass(module = "concord._concord", name = "Model", frozen)]
pub struct PyModel {
    model: Arc<Model>,
    tokenizer: Arc<Tokenizer>,
    dir: PathBuf,
}

/// Sampling and stopping arguments shared by `generate` and `stream`.
struct Sampling {
    max_tokens: usize,
    temperature: f32,
    top_p: f32,
    top_k: usize,
    seed: u64,
    stop: Vec<String>,
    ignore_eos: bool,
    min_p: f32,
    presence_penalty: f32,
    frequency_penalty: f32,
    repetition_penalty: f32,
}

impl PyModel {
    /// Tokenizes `prompt` (with BOS, as the model was trained) and starts a generation under
    /// `sampling`, capped at the context as `concord generate` is.
    fn start(&self, prompt: &str, s: Sampling) -> concord_core::Result<TextGeneration> {
        let ids = self.tokenizer.encode(prompt, true)?;
        let context = self.model.max_positions();
        if ids.len() >= context {
            return Err(Error::invalid(format!(
                "the prompt has {} tokens; the context is {context} (Model.load(..., context=N) \
                 raises it)",
                ids.len()
            )));
        }
        let params = GenerateParams {
            max_new_tokens: s.max_tokens.min(context - ids.len()),
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            seed: s.seed,
            stop_at_eos: !s.ignore_eos,
            min_p: s.min_p,
            presence_penalty: s.presence_penalty,
            frequency_penalty: s.frequency_penalty,
            repetition_penalty: s.repetition_penalty,
            ..GenerateParams::default()
        };
        TextGeneration::start(
            Arc::clone(&self.model),
            &self.tokenizer,
            &ids,
            params,
            s.stop,
        )
    }
}

#[pymethods]
impl PyModel {
    /// Loads the checkpoint in `dir` on `backend` ("cpu", "opencl", "cuda", "rocm", "ascend")
    /// at `precision` ("f32", "bf16", "fp8"; None = the checkpoint's native one), with room for
    /// `context` tokens (None = the model's maximum). Raises ConcordError naming the file at
    /// fault when the directory is not a usable checkpoint or the backend is unavailable.
    #[staticmethod]
    #[pyo3(signature = (dir, backend = "cpu", precision = None, context = None))]
    fn load(
        py: Python<'_>,
        dir: PathBuf,
        backend: &str,
        precision: Option<&str>,
        context: Option<usize>,
    ) -> PyResult<Self> {
        py.detach(|| {
            guarded(|| {
                let precision = precision.map(str::parse::<Precision>).transpose()?;
                if context == Some(0) {
                    return Err(Error::invalid("context must be at least 1 token"));
                }
                let tokenizer = Tokenizer::from_dir(&dir)?;
                let options = LoadOptions {
                    precision,
                    max_positions: context,
                    ..LoadOptions::default()
                };
                let backend = concord_runtime::open_backend(backend)?;
                let model = Model::load(&dir, backend, &options, &mut |_, _| true)?;
                Ok(PyModel {
                    model: Arc::new(model),
                    tokenizer: Arc::new(tokenizer),
                    dir: dir.clone(),
                })
            })
        })
    }

    /// Continues `prompt` and returns the generated text (without the prompt). Greedy at
    /// temperature 0; otherwise sampled, and the same `seed` gives the same text on every
    /// backend. Stops at the model's end-of-sequence token (unless `ignore_eos`), after
    /// `max_tokens` tokens, at the context limit, or just before the first of the `stop`
    /// strings. `min_p` and the presence, frequency and repetition penalties are those of
    /// `concord generate` (docs/numerics.md §Sampling). The GIL is released while generating.
    #[pyo3(signature = (prompt, *, max_tokens = 64, temperature = 0.0, top_p = 1.0, top_k = 0,
        seed = 0, stop = None, ignore_eos = false, min_p = 0.0, presence_penalty = 0.0,
        frequency_penalty = 0.0, repetition_penalty = 1.0))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn generate(
        &self,
        py: Python<'_>,
        prompt: &str,
        max_tokens: usize,
        temperature: f32,
        top_p: f32,
        top_k: usize,
        seed: u64,
        stop: Option<Vec<String>>,
        ignore_eos: bool,
        min_p: f32,
        presence_penalty: f32,
        frequency_penalty: f32,
        repetition_penalty: f32,
    ) -> PyResult<String> {
        let sampling = Sampling {
            max_tokens,
            temperature,
            top_p,
            top_k,
            seed,
            stop: stop.unwrap_or_default(),
            ignore_eos,
            min_p,
            presence_penalty,
            frequency_penalty,
            repetition_penalty,
        };
        py.detach(|| guarded(|| self.start(prompt, sampling)?.collect_text()))
    }

    /// Like `generate`, but returns an iterator over the pieces of text as they are produced;
    /// joined, they equal what `generate` returns for the same arguments.
    #[pyo3(signature = (prompt, *, max_tokens = 64, temperature = 0.0, top_p = 1.0, top_k = 0,
        seed = 0, stop = None, ignore_eos = false, min_p = 0.0, presence_penalty = 0.0,
        frequency_penalty = 0.0, repetition_penalty = 1.0))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn stream(
        &self,
        py: Python<'_>,
        prompt: &str,
        max_tokens: usize,
        temperature: f32,
        top_p: f32,
        top_k: usize,
        seed: u64,
        stop: Option<Vec<String>>,
        ignore_eos: bool,
        min_p: f32,
        presence_penalty: f32,
        frequency_penalty: f32,
        repetition_penalty: f32,
    ) -> PyResult<TextStream> {
        let sampling = Sampling {
            max_tokens,
            temperature,
            top_p,
            top_k,
            seed,
            stop: stop.unwrap_or_default(),
            ignore_eos,
            min_p,
            presence_penalty,
            frequency_penalty,
            repetition_penalty,
        };
        py.detach(|| guarded(|| self.start(prompt, sampling)))
            .map(TextStream::new)
    }

    /// The float32 logits of every position of `ids` (one sequence, BOS included if wanted),
    /// as a numpy array of shape [len(ids), vocab_size]: row r scores the token after ids[r].
    fn logits<'py>(&self, py: Python<'py>, ids: Vec<u32>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (rows, vocab) = py.detach(|| {
            guarded(|| {
                let mut sequence = self.model.new_sequence(ids.len())?;
                let mut logits =
                    self.model
                        .forward(&mut [&mut sequence], &[&ids], LogitRows::All)?;
                let rows = logits.per_sequence.pop().unwrap_or_default();
                Ok((rows, logits.vocab))
            })
        })?;
        // Without numpy the array constructor would panic; a missing module is an ImportError.
        py.import("numpy")?;
        PyArray1::from_vec(py, rows).reshape([ids.len(), vocab])
    }

    /// Token ids of `text`; `add_bos` puts the model's BOS id first (as `generate` does).
    #[pyo3(signature = (text, add_bos = true))]
    fn encode(&self, text: &str, add_bos: bool) -> PyResult<Vec<u32>> {
        guarded(|| self.tokenizer.encode(text, add_bos))
    }

    /// Text of `ids`; `skip_special` drops special tokens such as BOS and EOS. Ids the
    /// tokenizer does not know are skipped.
    #[pyo3(signature = (ids, skip_special = true))]
    fn decode(&self, ids: Vec<u32>, skip_special: bool) -> PyResult<String> {
        guarded(|| Ok(self.tokenizer.decode(&ids, skip_special)))
    }

    /// Rows of the logits: the model's vocabulary size.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.model.config().vocab_size
    }

    /// Longest sequence (prompt plus generated tokens) this model was loaded for.
    #[getter]
    fn context(&self) -> usize {
        self.model.max_positions()
    }

    /// The ids that end generation (the config's `eos_token_id`).
    #[getter]
    fn eos_token_ids(&self) -> Vec<u32> {
        self.model.config().eos_token_ids.clone()
    }

    /// The precision it computes in ("f32", "bf16" or "fp8").
    #[getter]
    fn precision(&self) -> &'static str {
        self.model.precision().name()
    }

    /// The backend it runs on.
    #[getter]
    fn backend(&self) -> String {
        self.model.backend().info().name.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "concord.Model({:?}, backend={:?}, precision={:?})",
            self.dir.display().to_string(),
            self.backend(),
            self.precision()
        )
    }
}
