//! Generation: sessions (pull one token at a time) and a callback loop.

use std::ffi::{c_char, c_void, CString};
use std::sync::{Arc, Mutex};

use concord_runtime::speculative::MAX_DRAFT_TOKENS;
use concord_runtime::{
    AcceptanceStats as RtAcceptanceStats, GenerateParams as RtGenerateParams, Generation,
    SpeculativeMtp,
};
use self_cell::self_cell;

use crate::args::{read_arg, slice_arg, Out};
use crate::handles::Registry;
use crate::model::{ConcordModel, MODELS};
use crate::status::{guard, guard_value, Failure, FfiResult, Status};

/// How to pick tokens and when to stop. Start from `concord_generate_params_default()`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GenerateParams {
    /// Most tokens to produce (≥ 1; the prompt plus these must fit in
    /// `concord_model_max_positions`).
    pub max_new_tokens: usize,
    /// 0 = greedy (argmax, ties to the lower id); otherwise sampling at this temperature.
    pub temperature: f32,
    /// Sample among the k most likely ids only (0 = all).
    pub top_k: u32,
    /// Nucleus threshold in (0, 1] (1 = off).
    pub top_p: f32,
    /// Seed of the sampler: the same seed gives the same tokens on every backend.
    pub seed: u64,
    /// Keep going past the end-of-sequence token (otherwise it is produced, then generation
    /// ends).
    pub ignore_eos: bool,
    /// 0 = plain decoding. N in 1..=16 = speculative decoding: the model's MTP module drafts N
    /// tokens per step and the main model verifies them in one forward. Greedy output is
    /// token-for-token that of plain decoding; sampled output follows the same distribution
    /// (not the same tokens for a seed). Needs a model loaded with
    /// `concord_model_params.load_mtp`. `concord_session_acceptance` reports how the drafts
    /// did.
    pub speculative_draft_tokens: u32,
    /// Drop ids whose probability is below `min_p` times the most likely one's (0 = off; in
    /// [0, 1]; greedy ignores it). Fields from here on were added after
    /// `speculative_draft_tokens`: start from `concord_generate_params_default()` so they
    /// hold neutral values.
    pub min_p: f32,
    /// Subtracted once from the logit of every id the output holds (0 = off; in [-2, 2]).
    pub presence_penalty: f32,
    /// Subtracted once per occurrence in the output (0 = off; in [-2, 2]).
    pub frequency_penalty: f32,
    /// For ids in the prompt or the output: positive logits divided by it, the others
    /// multiplied (1 = off; > 0). Not with `speculative_draft_tokens`.
    pub repetition_penalty: f32,
}

/// [`GenerateParams`] as read from C: `ignore_eos` as its raw byte, so that any byte is a
/// valid value. Same layout (`bool` is one byte).
#[repr(C)]
#[derive(Clone, Copy)]
struct RawGenerateParams {
    max_new_tokens: usize,
    temperature: f32,
    top_k: u32,
    top_p: f32,
    seed: u64,
    ignore_eos: u8,
    speculative_draft_tokens: u32,
    min_p: f32,
    presence_penalty: f32,
    frequency_penalty: f32,
    repetition_penalty: f32,
}

const _: () = assert!(
    std::mem::size_of::<GenerateParams>() == std::mem::size_of::<RawGenerateParams>()
        && std::mem::align_of::<GenerateParams>() == std::mem::align_of::<RawGenerateParams>()
);

/// Called with each generated token, the text it completes (NUL-terminated, valid only during
/// the call; `""` while a multi-byte character is still incomplete; special tokens give `""`)
/// and the `user_data` given to `concord_generate`. Returning false stops generation.
pub type TokenCallback =
    Option<unsafe extern "C" fn(token: u32, piece: *const c_char, user_data: *mut c_void) -> bool>;

self_cell!(
    /// A generation together with the model it borrows.
    struct OwnedGeneration {
        owner: Arc<ConcordModel>,
        #[covariant]
        dependent: Generation,
    }
);

/// A generation in progress (opaque): it holds its own reference to the model. Create with
/// `concord_session_new`, free with `concord_session_free`.
///
/// Thread safety: a session may be used from any thread, but not from two at once (calls are
/// serialised internally, yet pointers from `concord_session_logits` are invalidated by a
/// concurrent `concord_session_next`).
pub struct ConcordSession {
    state: Mutex<OwnedGeneration>,
}

static SESSIONS: Registry<ConcordSession> = Registry::new("concord_session");

/// Default generation parameters: 64 new tokens, greedy, no top-k/top-p/min-p, no penalties
/// (repetition 1), seed 0, stop at EOS, plain (not speculative) decoding.
///
/// Thread safety: any thread, any time.
#[no_mangle]
pub extern "C" fn concord_generate_params_default() -> GenerateParams {
    let defaults = || {
        let d = RtGenerateParams::default();
        GenerateParams {
            max_new_tokens: d.max_new_tokens,
            temperature: d.temperature,
            top_k: u32::try_from(d.top_k).unwrap_or(u32::MAX),
            top_p: d.top_p,
            seed: d.seed,
            ignore_eos: false,
            speculative_draft_tokens: 0,
            min_p: d.min_p,
            presence_penalty: d.presence_penalty,
            frequency_penalty: d.frequency_penalty,
            repetition_penalty: d.repetition_penalty,
        }
    };
    // The fallback is never used (`defaults` cannot fail); it only satisfies `guard_value`.
    guard_value(
        "concord_generate_params_default",
        GenerateParams {
            max_new_tokens: 64,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            ignore_eos: false,
            speculative_draft_tokens: 0,
            min_p: 0.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repetition_penalty: 1.0,
        },
        || Ok(defaults()),
    )
}

/// The speculative configuration `speculative_draft_tokens` asks for, checked against the
/// model: the runtime would reject the same cases, but its messages name Rust options.
fn speculative_from(model: &ConcordModel, draft_tokens: u32) -> FfiResult<Option<SpeculativeMtp>> {
    if draft_tokens == 0 {
        return Ok(None);
    }
    let draft_tokens = draft_tokens as usize;
    if draft_tokens > MAX_DRAFT_TOKENS {
        return Err(Failure::invalid(format!(
            "params->speculative_draft_tokens {draft_tokens} is over the limit of \
             {MAX_DRAFT_TOKENS} (0 = plain decoding)"
        )));
    }
    if model.model.mtp_module().is_none() {
        let layers = model.model.config().num_nextn_predict_layers;
        return Err(Failure::invalid(if layers == 0 {
            "params->speculative_draft_tokens needs an MTP module, and this model has none \
             (num_nextn_predict_layers is 0 in its config.json)"
                .to_owned()
        } else {
            "params->speculative_draft_tokens needs the model's MTP module, which was not \
             loaded: load the model with concord_model_params.load_mtp = true"
                .to_owned()
        }));
    }
    Ok(Some(SpeculativeMtp { draft_tokens }))
}

/// Checks the C arguments of a generation and starts it.
///
/// # Safety
/// `prompt` must hold `n_prompt` ids; `params` must point to a readable
/// `concord_generate_params`.
unsafe fn start(
    model: *const ConcordModel,
    prompt: *const u32,
    n_prompt: usize,
    params: *const GenerateParams,
) -> FfiResult<OwnedGeneration> {
    // SAFETY: readable (caller's contract); every bit pattern is a valid `RawGenerateParams`.
    let p = unsafe { read_arg(params.cast::<RawGenerateParams>(), "params") }?;
    let model = MODELS.get(model, "model")?;
    let limit = model.model.max_positions();
    // SAFETY: `prompt` holds `n_prompt` ids (caller's contract); no slice is formed when
    // `n_prompt` exceeds the model's positions.
    let prompt = unsafe { slice_arg(prompt, n_prompt, limit, "prompt") }?;
    if p.max_new_tokens == 0 {
        return Err(Failure::invalid("params->max_new_tokens is 0"));
    }
    if p.max_new_tokens > limit - prompt.len() {
        return Err(Failure::invalid(format!(
            "the prompt ({} tokens) plus params->max_new_tokens ({}) exceed the model's {limit} \
             positions",
            prompt.len(),
            p.max_new_tokens
        )));
    }
    let params = RtGenerateParams {
        max_new_tokens: p.max_new_tokens,
        temperature: p.temperature,
        top_k: p.top_k as usize,
        top_p: p.top_p,
        min_p: p.min_p,
        presence_penalty: p.presence_penalty,
        frequency_penalty: p.frequency_penalty,
        repetition_penalty: p.repetition_penalty,
        seed: p.seed,
        stop_tokens: if p.ignore_eos != 0 {
            Vec::new()
        } else {
            model.model.config().eos_token_ids.clone()
        },
        stop_at_eos: false,
        speculative: speculative_from(&model, p.speculative_draft_tokens)?,
    };
    Ok(OwnedGeneration::try_new(model, |m| {
        m.model.generate(prompt, params)
    })?)
}

/// Starts generating after `prompt` (`n_prompt ≥ 1` ids, e.g. from `concord_tokenize` or
/// `concord_chat_template`) and stores the new session in `*out` (NULL on failure). The
/// session holds its own reference to the model: freeing the model first is allowed.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL pointer, `n_prompt` 0, an id outside the
/// vocabulary, `max_new_tokens` 0, prompt plus `max_new_tokens` over the model's positions,
/// negative or non-finite temperature, `top_p` outside (0, 1], `speculative_draft_tokens` over
/// 16 or non-zero on a model loaded without its MTP module), `CONCORD_ERR_INVALID_HANDLE`,
/// `CONCORD_ERR_BACKEND` (out of device memory).
///
/// Thread safety: concurrent calls on one model are safe.
///
/// # Safety
/// `prompt` must hold `n_prompt` ids, `params` point to a `concord_generate_params`, `out` be
/// writable.
#[no_mangle]
pub unsafe extern "C" fn concord_session_new(
    model: *const ConcordModel,
    prompt: *const u32,
    n_prompt: usize,
    params: *const GenerateParams,
    out: *mut *mut ConcordSession,
) -> Status {
    guard("concord_session_new", || {
        let out = Out::new(out, "out")?;
        // SAFETY: writable (caller's contract); cleared before anything can fail.
        unsafe { out.set(std::ptr::null_mut()) };
        // SAFETY: forwarded contract.
        let generation = unsafe { start(model, prompt, n_prompt, params) }?;
        let handle = SESSIONS.insert(Arc::new(ConcordSession {
            state: Mutex::new(generation),
        }));
        // SAFETY: as above.
        unsafe { out.set(handle) };
        Ok(Status::ConcordOk)
    })
}

/// Runs one step: stores the next token in `*token` and returns `CONCORD_OK`, or returns
/// `CONCORD_DONE` once the stop token was produced or `max_new_tokens` reached (then every later
/// call returns `CONCORD_DONE` too). After an error the session is finished as well.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL pointer), `CONCORD_ERR_INVALID_HANDLE`,
/// `CONCORD_ERR_BACKEND`.
///
/// Thread safety: not concurrently with another call on the same session.
///
/// # Safety
/// `token` must be writable.
#[no_mangle]
pub unsafe extern "C" fn concord_session_next(
    session: *mut ConcordSession,
    token: *mut u32,
) -> Status {
    guard("concord_session_next", || {
        let token = Out::new(token, "token")?;
        let session = SESSIONS.get(session, "session")?;
        let mut state = session.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.with_dependent_mut(|_, generation| generation.next()) {
            None => Ok(Status::ConcordDone),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(t)) => {
                // SAFETY: writable (caller's contract).
                unsafe { token.set(t) };
                Ok(Status::ConcordOk)
            }
        }
    })
}

/// Points `*logits` at the logits (`*n_vocab` floats, before temperature) from which the most
/// recent token of `concord_session_next` was chosen. The array belongs to the session and is
/// valid until the next call on this session or its free.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL pointer; no token generated yet),
/// `CONCORD_ERR_INVALID_HANDLE`.
///
/// Thread safety: not concurrently with another call on the same session.
///
/// # Safety
/// `logits` and `n_vocab` must be writable.
#[no_mangle]
pub unsafe extern "C" fn concord_session_logits(
    session: *mut ConcordSession,
    logits: *mut *const f32,
    n_vocab: *mut usize,
) -> Status {
    guard("concord_session_logits", || {
        let logits = Out::new(logits, "logits")?;
        let n_vocab = Out::new(n_vocab, "n_vocab")?;
        let session = SESSIONS.get(session, "session")?;
        let state = session.state.lock().unwrap_or_else(|e| e.into_inner());
        let row = state.borrow_dependent().last_logits();
        if row.is_empty() {
            return Err(Failure::invalid(
                "no token has been generated yet: call concord_session_next first",
            ));
        }
        // SAFETY: both writable (caller's contract). The row lives in the session's heap
        // state, which the registry keeps alive until concord_session_free, and changes only
        // on the next concord_session_next.
        unsafe {
            logits.set(row.as_ptr());
            n_vocab.set(row.len());
        }
        Ok(Status::ConcordOk)
    })
}

/// How the drafts of a speculative session did so far (`concord_session_acceptance`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AcceptanceStats {
    /// Verification forwards of the main model (one per speculative step).
    pub steps: u64,
    /// Tokens drafted by the MTP module and sent to verification (drafts after a rejected one
    /// count as drafted, not accepted).
    pub drafted: u64,
    /// Drafted tokens kept (≤ `drafted`).
    pub accepted: u64,
    /// `accepted / drafted`; 0 before any draft.
    pub acceptance_rate: f64,
    /// Tokens produced per verification forward, `(accepted + steps) / steps`: 1 = no gain,
    /// 1 + `speculative_draft_tokens` = every draft kept; 0 before any step.
    pub mean_accepted_length: f64,
}

impl From<RtAcceptanceStats> for AcceptanceStats {
    fn from(stats: RtAcceptanceStats) -> Self {
        AcceptanceStats {
            steps: stats.steps,
            drafted: stats.drafted,
            accepted: stats.accepted,
            acceptance_rate: stats.acceptance_rate(),
            mean_accepted_length: stats.mean_accepted_length(),
        }
    }
}

/// Stores in `*out` how the drafts of a speculative session (`speculative_draft_tokens` ≥ 1)
/// did so far: all counts are 0 before the first `concord_session_next`, and they stop
/// changing once the session is done. `*out` is left unchanged on failure.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL pointer; the session does not decode
/// speculatively, i.e. it was created with `speculative_draft_tokens` 0),
/// `CONCORD_ERR_INVALID_HANDLE`.
///
/// Thread safety: not concurrently with another call on the same session.
///
/// # Safety
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn concord_session_acceptance(
    session: *const ConcordSession,
    out: *mut AcceptanceStats,
) -> Status {
    guard("concord_session_acceptance", || {
        let out = Out::new(out, "out")?;
        let session = SESSIONS.get(session, "session")?;
        let state = session.state.lock().unwrap_or_else(|e| e.into_inner());
        let stats = state.borrow_dependent().acceptance().ok_or_else(|| {
            Failure::invalid(
                "the session does not decode speculatively (it was created with \
                 params->speculative_draft_tokens 0)",
            )
        })?;
        // SAFETY: writable (caller's contract).
        unsafe { out.set(stats.into()) };
        Ok(Status::ConcordOk)
    })
}

/// Frees a session (its cache; the model stays as long as it is not freed). NULL is a no-op
/// returning `CONCORD_OK`; a handle already freed or not a session returns
/// `CONCORD_ERR_INVALID_HANDLE`.
///
/// Thread safety: not concurrently with another call on the same session.
#[no_mangle]
pub extern "C" fn concord_session_free(session: *mut ConcordSession) -> Status {
    guard("concord_session_free", || {
        if session.is_null() {
            return Ok(Status::ConcordOk);
        }
        drop(SESSIONS.remove(session)?);
        Ok(Status::ConcordOk)
    })
}

/// Generates after `prompt` as `concord_session_new` + `concord_session_next` would, calling
/// `on_token` with each token and its text. Returns `CONCORD_OK` when generation ended by
/// itself (stop token or `max_new_tokens`) and `CONCORD_ERR_CANCELLED` when `on_token` returned
/// false (the token it was given is the last one).
///
/// Errors: those of `concord_session_new` and `concord_session_next` (`on_token` NULL is
/// `CONCORD_ERR_INVALID_ARGUMENT`), and `CONCORD_ERR_CANCELLED`.
///
/// Thread safety: concurrent calls on one model are safe; the callback runs on the calling
/// thread.
///
/// # Safety
/// As for `concord_session_new`; `on_token` must be a valid function, `user_data` is passed to
/// it unchanged.
#[no_mangle]
pub unsafe extern "C" fn concord_generate(
    model: *const ConcordModel,
    prompt: *const u32,
    n_prompt: usize,
    params: *const GenerateParams,
    on_token: TokenCallback,
    user_data: *mut c_void,
) -> Status {
    guard("concord_generate", || {
        let on_token = on_token.ok_or_else(|| Failure::invalid("on_token is NULL"))?;
        // SAFETY: forwarded contract.
        let mut generation = unsafe { start(model, prompt, n_prompt, params) }?;
        generation.with_dependent_mut(|model, generation| {
            let mut decoder = model.tokenizer.decoder_stream();
            for token in generation {
                let token = token?;
                let piece = decoder.push(token).unwrap_or_default();
                let piece = CString::new(piece.replace('\0', "\u{FFFD}")).unwrap_or_default();
                // SAFETY: a valid callback (caller's contract); `piece` outlives the call.
                if !unsafe { on_token(token, piece.as_ptr(), user_data) } {
                    return Err(Failure::new(
                        Status::ConcordErrCancelled,
                        "the on_token callback stopped generation",
                    ));
                }
            }
            Ok(Status::ConcordOk)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field reaches C from its own source (the fixtures' drafts are never accepted, so
    /// the end-to-end tests cannot tell `accepted` from 0).
    #[test]
    fn acceptance_stats_keep_each_count() {
        let stats = AcceptanceStats::from(RtAcceptanceStats {
            steps: 4,
            drafted: 8,
            accepted: 5,
        });
        assert_eq!(
            stats,
            AcceptanceStats {
                steps: 4,
                drafted: 8,
                accepted: 5,
                // 5 / 8, and (5 accepted + 4 own tokens) / 4 steps.
                acceptance_rate: 0.625,
                mean_accepted_length: 2.25,
            }
        );
    }
}
