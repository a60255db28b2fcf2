//! Models: load parameters, loading, freeing, and what a loaded model reports.

use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use concord_runtime::text::Tokenizer;
use concord_runtime::{open_backend, LoadOptions, Model};

use crate::args::{opt_str_arg, read_arg, str_arg, Out};
use crate::handles::Registry;
use crate::status::{guard, guard_value, Failure, FfiResult, Status};

/// A loaded model and its tokenizer (opaque). Create with `concord_model_load`, free with
/// `concord_model_free`.
///
/// Thread safety: every function taking a `const concord_model *` may run concurrently on the
/// same model from several threads (each generation keeps its own cache).
pub struct ConcordModel {
    pub(crate) model: Model,
    pub(crate) tokenizer: Tokenizer,
}

/// Live models. (A `static` registry needs `ConcordModel: Send + Sync`, which is what makes
/// concurrent use of one model from several threads sound.)
pub(crate) static MODELS: Registry<ConcordModel> = Registry::new("concord_model");

/// Compute precision of a loaded model (docs/numerics.md §Modes).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The checkpoint's own: FP8 for FP8 checkpoints, BF16 otherwise.
    Native = 0,
    /// Every weight upcast exactly to f32, f32 activations.
    F32 = 1,
    /// BF16 weights and activations.
    Bf16 = 2,
    /// FP8 block-scaled projections (W8A8), BF16 elsewhere.
    Fp8 = 3,
}

/// Called after each layer is loaded with the fraction done (0 < progress ≤ 1) and the
/// `progress_user_data` of the parameters; returning false cancels the load.
pub type ProgressCallback =
    Option<unsafe extern "C" fn(progress: f32, user_data: *mut c_void) -> bool>;

/// How to load a model. Start from `concord_model_default_params()` and change fields.
#[repr(C)]
pub struct ModelParams {
    /// Backend name (`concord_backend_name`); NULL means `"cpu"`.
    pub backend: *const c_char,
    /// A `concord_precision` value.
    pub precision: Precision,
    /// Load progress callback, or NULL.
    pub progress_callback: ProgressCallback,
    /// Passed unchanged to `progress_callback`.
    pub progress_user_data: *mut c_void,
    /// Also load the multi-token-prediction (MTP) module, which speculative decoding
    /// (`concord_generate_params.speculative_draft_tokens`) drafts with. The model must have
    /// one (`num_nextn_predict_layers` ≥ 1 in its config.json). Default false.
    pub load_mtp: bool,
}

/// [`ModelParams`] as read from C: the precision as its raw bits, so an out-of-range value is
/// an error instead of an invalid enum, and `load_mtp` as its raw byte, so that any byte is a
/// valid value. Same layout (a `repr(u32)` enum is a `u32`, a `bool` one byte).
#[repr(C)]
#[derive(Clone, Copy)]
struct RawModelParams {
    backend: *const c_char,
    precision: u32,
    progress_callback: ProgressCallback,
    progress_user_data: *mut c_void,
    load_mtp: u8,
}

const _: () = assert!(
    std::mem::size_of::<ModelParams>() == std::mem::size_of::<RawModelParams>()
        && std::mem::align_of::<ModelParams>() == std::mem::align_of::<RawModelParams>()
);

/// Default load parameters: the `cpu` backend, the checkpoint's native precision, no progress
/// callback, no MTP module.
///
/// Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn concord_model_default_params() -> ModelParams {
    let defaults = || ModelParams {
        backend: std::ptr::null(),
        precision: Precision::Native,
        progress_callback: None,
        progress_user_data: std::ptr::null_mut(),
        load_mtp: false,
    };
    guard_value(
        "concord_model_default_params",
        defaults(),
        || Ok(defaults()),
    )
}

fn precision_from(raw: u32) -> FfiResult<Option<concord_runtime::Precision>> {
    use concord_runtime::Precision as P;
    match raw {
        0 => Ok(None),
        1 => Ok(Some(P::F32)),
        2 => Ok(Some(P::Bf16)),
        3 => Ok(Some(P::Fp8)),
        other => Err(Failure::invalid(format!(
            "params->precision {other} is not a concord_precision (0..=3)"
        ))),
    }
}

/// The bundled demo model's directory (config.json, BF16 weights, tokenizer): `$CONCORD_DEMO_MODEL`,
/// else `models/demo` beside the host executable or its ancestors, else the checkout the library
/// was built from, else `"models/demo"` (canonicalised when it exists). Resolved once; a static
/// string, never freed.
///
/// Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn concord_demo_model_path() -> *const c_char {
    static PATH: OnceLock<CString> = OnceLock::new();
    guard_value("concord_demo_model_path", c"models/demo".as_ptr(), || {
        Ok(PATH
            .get_or_init(|| {
                let dir = concord_runtime::demo_model_dir();
                CString::new(dir.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| c"models/demo".to_owned())
            })
            .as_ptr())
    })
}

/// Loads the Hugging Face model directory `dir` (config.json, *.safetensors, tokenizer.json,
/// tokenizer_config.json) and stores the new model in `*out`. On any failure `*out` is set to
/// NULL.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL `dir`, `params` or `out`; non-UTF-8 strings;
/// unknown backend or precision; `load_mtp` on a model without an MTP module, the message
/// naming `num_nextn_predict_layers`), `CONCORD_ERR_UNAVAILABLE` (the backend cannot run here),
/// `CONCORD_ERR_CANCELLED` (the progress callback returned false), `CONCORD_ERR_MODEL` (also a
/// missing or mis-shaped MTP tensor with `load_mtp`, named in the message), `CONCORD_ERR_IO`,
/// `CONCORD_ERR_UNSUPPORTED`, `CONCORD_ERR_BACKEND`.
///
/// Thread safety: any thread; loads may run concurrently. The callback runs on the calling
/// thread.
///
/// # Safety
/// `dir` must be a NUL-terminated string, `params` must point to a `concord_model_params`
/// whose strings are NUL-terminated, and `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn concord_model_load(
    dir: *const c_char,
    params: *const ModelParams,
    out: *mut *mut ConcordModel,
) -> Status {
    guard("concord_model_load", || {
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is writable (caller's contract); clear it before anything can fail.
        unsafe { out.set(std::ptr::null_mut()) };
        // SAFETY: `params` points to a readable `concord_model_params` (caller's contract),
        // laid out as `RawModelParams`, which has no invalid values.
        let params = unsafe { read_arg(params.cast::<RawModelParams>(), "params") }?;
        // SAFETY: NUL-terminated if non-NULL (caller's contract).
        let dir = unsafe { str_arg(dir, "dir") }?;
        // SAFETY: NUL-terminated if non-NULL (caller's contract).
        let backend = unsafe { opt_str_arg(params.backend, "params->backend") }?.unwrap_or("cpu");
        let precision = precision_from(params.precision)?;
        let dir = Path::new(dir);
        if !dir.join("config.json").is_file() {
            return Err(Failure::invalid(format!(
                "{} is not a model directory (no config.json)",
                dir.display()
            )));
        }
        let tokenizer = Tokenizer::from_dir(dir)?;
        let backend = open_backend(backend)?;
        let options = LoadOptions {
            precision,
            max_positions: None,
            mtp: params.load_mtp != 0,
            parallel: None,
        };
        let (callback, user) = (params.progress_callback, params.progress_user_data);
        let mut progress = |done: usize, total: usize| match callback {
            // SAFETY: a valid function pointer taking (float, void *) (caller's contract);
            // `user` is passed through untouched.
            Some(f) => unsafe { f(done as f32 / total.max(1) as f32, user) },
            None => true,
        };
        let model = Model::load(dir, backend, &options, &mut progress).map_err(|e| {
            let mut failure = Failure::from(e);
            if failure.status == Status::ConcordErrCancelled {
                failure.message = "the progress callback cancelled the load".to_owned();
            }
            failure
        })?;
        let handle = MODELS.insert(Arc::new(ConcordModel { model, tokenizer }));
        // SAFETY: as above.
        unsafe { out.set(handle) };
        Ok(Status::ConcordOk)
    })
}

/// Frees a model. NULL is a no-op returning `CONCORD_OK`. Sessions of the model keep it alive,
/// so they stay usable and may be freed before or after it. A handle that was already freed or
/// is not a model returns `CONCORD_ERR_INVALID_HANDLE` and frees nothing.
///
/// Thread safety: any thread; calls still running on the model on other threads finish
/// normally (they hold it until they return), but the handle must not be used after this call.
#[no_mangle]
pub extern "C" fn concord_model_free(model: *mut ConcordModel) -> Status {
    guard("concord_model_free", || {
        if model.is_null() {
            return Ok(Status::ConcordOk);
        }
        drop(MODELS.remove(model)?);
        Ok(Status::ConcordOk)
    })
}

/// Stores the model's vocabulary size (the length of a logits row) in `*n_vocab`.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL pointer), `CONCORD_ERR_INVALID_HANDLE`.
///
/// Thread safety: concurrent calls on one model are safe.
///
/// # Safety
/// `n_vocab` must be writable.
#[no_mangle]
pub unsafe extern "C" fn concord_model_n_vocab(
    model: *const ConcordModel,
    n_vocab: *mut usize,
) -> Status {
    guard("concord_model_n_vocab", || {
        let out = Out::new(n_vocab, "n_vocab")?;
        let model = MODELS.get(model, "model")?;
        // SAFETY: writable (caller's contract).
        unsafe { out.set(model.model.config().vocab_size) };
        Ok(Status::ConcordOk)
    })
}

/// Stores the longest sequence the model supports (prompt plus generated tokens) in
/// `*max_positions`.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL pointer), `CONCORD_ERR_INVALID_HANDLE`.
///
/// Thread safety: concurrent calls on one model are safe.
///
/// # Safety
/// `max_positions` must be writable.
#[no_mangle]
pub unsafe extern "C" fn concord_model_max_positions(
    model: *const ConcordModel,
    max_positions: *mut usize,
) -> Status {
    guard("concord_model_max_positions", || {
        let out = Out::new(max_positions, "max_positions")?;
        let model = MODELS.get(model, "model")?;
        // SAFETY: writable (caller's contract).
        unsafe { out.set(model.model.max_positions()) };
        Ok(Status::ConcordOk)
    })
}
