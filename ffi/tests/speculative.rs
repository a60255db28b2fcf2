//! Speculative decoding with the MTP module through the C API: `load_mtp`,
//! `speculative_draft_tokens` and `concord_session_acceptance`.
//!
//! The oracle for the tokens is the fixture's reference greedy continuation, computed by
//! transformers in float32 (`tests/fixtures/mtp_release_layout/reference.safetensors`,
//! `greedy.i` after `input_ids.i`): plain and speculative greedy must both reproduce it. The
//! acceptance counts are checked against what the decoding scheme implies by hand: the prompt's
//! forward decides the first token, and every verification step after it decides its accepted
//! drafts plus one token of the main model, so `1 + accepted + steps` tokens come out.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr;

use concord::*;

mod common;
use common::{drain, last_error};
use concord_tests::{fixtures_dir, read_references, Reference};

/// The fixture: DeepSeek-V3 with one MTP layer (`model.layers.2.*`).
fn mtp_fixture() -> PathBuf {
    fixtures_dir().join("mtp_release_layout")
}

/// A model without an MTP module (`num_nextn_predict_layers` 0; the demo has one).
fn no_mtp_dir() -> PathBuf {
    fixtures_dir().join("v3_grouped_routing")
}

/// `concord_model_load` of `dir` in f32 (the precision the reference was computed in).
fn try_load(dir: &Path, load_mtp: bool) -> Result<*mut ConcordModel, (Status, String)> {
    let dir = CString::new(dir.to_str().unwrap()).unwrap();
    let mut params = concord_model_default_params();
    params.precision = Precision::F32;
    params.load_mtp = load_mtp;
    let mut model = ptr::null_mut();
    // SAFETY: valid string, params and out pointer.
    let status = unsafe { concord_model_load(dir.as_ptr(), &params, &mut model) };
    if status == Status::ConcordOk {
        Ok(model)
    } else {
        assert!(model.is_null(), "a failed load leaves *out NULL");
        Err((status, last_error()))
    }
}

fn load(dir: &Path, load_mtp: bool) -> *mut ConcordModel {
    try_load(dir, load_mtp).unwrap_or_else(|(s, m)| panic!("{}: {s:?}: {m}", dir.display()))
}

fn greedy_params(max_new_tokens: usize, draft_tokens: u32) -> GenerateParams {
    let mut params = concord_generate_params_default();
    params.max_new_tokens = max_new_tokens;
    params.ignore_eos = true;
    params.speculative_draft_tokens = draft_tokens;
    params
}

fn new_session(
    model: *mut ConcordModel,
    prompt: &[u32],
    params: &GenerateParams,
) -> Result<*mut ConcordSession, (Status, String)> {
    let mut session = ptr::null_mut();
    // SAFETY: valid pointers; `prompt` holds prompt.len() ids.
    let status =
        unsafe { concord_session_new(model, prompt.as_ptr(), prompt.len(), params, &mut session) };
    if status == Status::ConcordOk {
        Ok(session)
    } else {
        assert!(session.is_null(), "a failed session_new leaves *out NULL");
        Err((status, last_error()))
    }
}

fn acceptance(session: *const ConcordSession) -> Result<AcceptanceStats, (Status, String)> {
    // A pattern no successful call leaves behind (NaN rates), so a field left unwritten shows.
    let mut stats = AcceptanceStats {
        steps: u64::MAX,
        drafted: u64::MAX,
        accepted: u64::MAX,
        acceptance_rate: f64::NAN,
        mean_accepted_length: f64::NAN,
    };
    // SAFETY: `stats` is writable.
    let status = unsafe { concord_session_acceptance(session, &mut stats) };
    if status == Status::ConcordOk {
        Ok(stats)
    } else {
        Err((status, last_error()))
    }
}

/// Runs a session to completion: its tokens and, when speculative, its final acceptance.
fn run(
    model: *mut ConcordModel,
    prompt: &[u32],
    params: &GenerateParams,
) -> (Vec<u32>, Option<AcceptanceStats>) {
    let session = new_session(model, prompt, params).unwrap_or_else(|(s, m)| panic!("{s:?}: {m}"));
    if params.speculative_draft_tokens > 0 {
        let before = acceptance(session).unwrap();
        assert_eq!(
            (before.steps, before.drafted, before.accepted),
            (0, 0, 0),
            "nothing is drafted before the first token"
        );
    }
    let tokens = drain(session);
    let stats = acceptance(session).ok();
    assert_eq!(concord_session_free(session), Status::ConcordOk);
    (tokens, stats)
}

/// The acceptance counts the reference implies, or `None` where it cannot tell.
///
/// `first_draft_hits[k]` says whether the MTP module's prediction after the reference
/// continuation's token k (the argmax of `mtp_logits_continued` row T-1+k, ties to the lower
/// id) is the reference token k+1. The scheme: the prompt's forward decides token 0; a step
/// deciding from index j verifies `min(draft_tokens, n - j - 1)` drafts (never past the
/// budget), keeps the accepted prefix and adds one token of the main model. A round's first
/// draft is the module applied to the last decided pair, exactly what the reference computed;
/// later drafts of a round re-apply the module to its own output, which the reference does not
/// cover, so a round whose first draft is accepted with `draft_tokens ≥ 2` gives `None`.
fn expected_acceptance(
    first_draft_hits: &[bool],
    n: usize,
    draft_tokens: usize,
) -> Option<(u64, u64, u64)> {
    let (mut steps, mut drafted, mut accepted) = (0, 0, 0);
    let mut j = 1;
    while j < n {
        let usable = draft_tokens.min(n - j - 1);
        steps += 1;
        drafted += usable as u64;
        let kept = if usable > 0 && first_draft_hits[j - 1] {
            if draft_tokens > 1 {
                return None;
            }
            1
        } else {
            0
        };
        accepted += kept as u64;
        j += kept + 1;
    }
    Some((steps, drafted, accepted))
}

/// `first_draft_hits` of prompt `i` (see [`expected_acceptance`]).
fn first_draft_hits(refs: &HashMap<String, Reference>, i: usize) -> Vec<bool> {
    let prompt_len = refs[&format!("input_ids.{i}")].values.len();
    let greedy = refs[&format!("greedy.{i}")].ids();
    let mtp = &refs[&format!("mtp_logits_continued.{i}")];
    let vocab = *mtp.shape.last().unwrap();
    let argmax = |row: usize| {
        let logits = &mtp.values[row * vocab..(row + 1) * vocab];
        (0..vocab).fold(0, |best, v| if logits[v] > logits[best] { v } else { best }) as u32
    };
    (0..greedy.len() - 1)
        .map(|k| argmax(prompt_len - 1 + k) == greedy[k + 1])
        .collect()
}

#[test]
fn speculative_greedy_gives_the_reference_tokens_and_acceptance() {
    let dir = mtp_fixture();
    let refs = read_references(&dir);
    let model = load(&dir, true);
    let mut prompts = 0;
    while let (Some(prompt), Some(greedy)) = (
        refs.get(&format!("input_ids.{prompts}")),
        refs.get(&format!("greedy.{prompts}")),
    ) {
        let i = prompts;
        prompts += 1;
        let (prompt, want) = (prompt.ids(), greedy.ids());
        let n = want.len();
        let hits = first_draft_hits(&refs, i);
        let (plain, none) = run(model, &prompt, &greedy_params(n, 0));
        assert_eq!(plain, want, "prompt {i}: plain greedy");
        assert!(none.is_none(), "a plain session has no acceptance stats");
        for draft_tokens in [1u32, 2] {
            let (got, stats) = run(model, &prompt, &greedy_params(n, draft_tokens));
            assert_eq!(
                got, want,
                "prompt {i}: speculative greedy, {draft_tokens} drafts"
            );
            let s = stats.expect("a speculative session has acceptance stats");
            let what = format!("prompt {i}, {draft_tokens} drafts: {s:?}");
            assert!(s.steps >= 1 && s.accepted <= s.drafted, "{what}");
            assert!(s.drafted <= u64::from(draft_tokens) * s.steps, "{what}");
            assert_eq!(1 + s.accepted + s.steps, n as u64, "{what}");
            if let Some(counts) = expected_acceptance(&hits, n, draft_tokens as usize) {
                assert_eq!((s.steps, s.drafted, s.accepted), counts, "{what}");
            }
            assert_eq!(
                s.acceptance_rate,
                s.accepted as f64 / s.drafted as f64,
                "{what}"
            );
            assert_eq!(
                s.mean_accepted_length,
                (s.accepted + s.steps) as f64 / s.steps as f64,
                "{what}"
            );
        }
    }
    assert_eq!(prompts, 6, "the fixture's prompts");
    assert_eq!(concord_model_free(model), Status::ConcordOk);
}

#[test]
fn the_acceptance_oracle_counts_by_hand() {
    // 16 tokens, no draft ever right: 15 steps of one token each; 1 draft per step except the
    // last (no room), 2 per step until the budget allows fewer (13 × 2 + 1 + 0).
    let misses = [false; 15];
    assert_eq!(expected_acceptance(&misses, 16, 1), Some((15, 14, 0)));
    assert_eq!(expected_acceptance(&misses, 16, 2), Some((15, 27, 0)));
    // Every draft right with 1 draft: each step keeps it and adds one, 2 tokens a step.
    let hits = [true; 15];
    assert_eq!(expected_acceptance(&hits, 16, 1), Some((8, 7, 7)));
    assert_eq!(expected_acceptance(&hits, 16, 2), None);
}

#[test]
fn the_callback_api_decodes_speculatively_too() {
    let dir = mtp_fixture();
    let refs = read_references(&dir);
    let (prompt, want) = (refs["input_ids.3"].ids(), refs["greedy.3"].ids());
    let model = load(&dir, true);
    unsafe extern "C" fn push(
        token: u32,
        _piece: *const std::ffi::c_char,
        user: *mut std::ffi::c_void,
    ) -> bool {
        // SAFETY: `user` is the Vec passed to concord_generate below.
        unsafe { &mut *user.cast::<Vec<u32>>() }.push(token);
        true
    }
    let mut got: Vec<u32> = Vec::new();
    let params = greedy_params(want.len(), 3);
    // SAFETY: valid pointers; `push` matches the callback type; `got` outlives the call.
    let status = unsafe {
        concord_generate(
            model,
            prompt.as_ptr(),
            prompt.len(),
            &params,
            Some(push),
            (&mut got as *mut Vec<u32>).cast(),
        )
    };
    assert_eq!(status, Status::ConcordOk, "{}", last_error());
    assert_eq!(got, want);
    assert_eq!(concord_model_free(model), Status::ConcordOk);
}

#[test]
fn load_mtp_on_a_model_without_one_names_num_nextn_predict_layers() {
    let (status, message) = try_load(&no_mtp_dir(), true).unwrap_err();
    assert_eq!(status, Status::ConcordErrInvalidArgument, "{message}");
    assert!(message.starts_with("concord_model_load: "), "{message}");
    assert!(message.contains("num_nextn_predict_layers"), "{message}");
}

#[test]
fn draft_tokens_out_of_range_or_without_the_module_are_invalid() {
    let refs = read_references(&mtp_fixture());
    let prompt = refs["input_ids.1"].ids();

    let with_mtp = load(&mtp_fixture(), true);
    let (status, message) = new_session(with_mtp, &prompt, &greedy_params(4, 17)).unwrap_err();
    assert_eq!(status, Status::ConcordErrInvalidArgument, "{message}");
    assert!(message.starts_with("concord_session_new: "), "{message}");
    assert!(message.contains("speculative_draft_tokens 17"), "{message}");
    for bad in [u32::MAX, 1 << 31] {
        let (status, _) = new_session(with_mtp, &prompt, &greedy_params(4, bad)).unwrap_err();
        assert_eq!(status, Status::ConcordErrInvalidArgument);
    }
    // 16 is the largest draft count (more than the budget is fine: drafts stop at it).
    let (tokens, stats) = run(with_mtp, &prompt, &greedy_params(4, 16));
    assert_eq!(tokens, refs["greedy.1"].ids()[..4]);
    assert!(stats.is_some());
    assert_eq!(concord_model_free(with_mtp), Status::ConcordOk);

    // The MTP model loaded without its module: the message says how to load it.
    let without = load(&mtp_fixture(), false);
    let (status, message) = new_session(without, &prompt, &greedy_params(4, 1)).unwrap_err();
    assert_eq!(status, Status::ConcordErrInvalidArgument, "{message}");
    assert!(message.contains("load_mtp"), "{message}");
    assert_eq!(concord_model_free(without), Status::ConcordOk);

    // A model that has no module at all: the message says so.
    let plain = load(&no_mtp_dir(), false);
    let (status, message) = new_session(plain, &[1, 2, 3], &greedy_params(4, 1)).unwrap_err();
    assert_eq!(status, Status::ConcordErrInvalidArgument, "{message}");
    assert!(message.contains("num_nextn_predict_layers"), "{message}");
    assert_eq!(concord_model_free(plain), Status::ConcordOk);
}

#[test]
fn acceptance_checks_its_arguments() {
    let refs = read_references(&mtp_fixture());
    let prompt = refs["input_ids.1"].ids();
    let model = load(&mtp_fixture(), true);
    let plain = new_session(model, &prompt, &greedy_params(4, 0)).unwrap();
    let speculative = new_session(model, &prompt, &greedy_params(4, 2)).unwrap();

    let mut stats = AcceptanceStats {
        steps: 7,
        drafted: 7,
        accepted: 7,
        acceptance_rate: 7.0,
        mean_accepted_length: 7.0,
    };
    let untouched = stats;
    let cases: [(*const ConcordSession, *mut AcceptanceStats, Status, &str); 5] = [
        (
            plain,
            &mut stats,
            Status::ConcordErrInvalidArgument,
            "speculatively",
        ),
        (
            ptr::null(),
            &mut stats,
            Status::ConcordErrInvalidArgument,
            "session is NULL",
        ),
        (
            speculative,
            ptr::null_mut(),
            Status::ConcordErrInvalidArgument,
            "out is NULL",
        ),
        (
            model.cast::<ConcordSession>(),
            &mut stats,
            Status::ConcordErrInvalidHandle,
            "not a live concord_session handle",
        ),
        (
            (&mut stats as *mut AcceptanceStats).cast::<ConcordSession>(),
            &mut stats,
            Status::ConcordErrInvalidHandle,
            "not a live concord_session handle",
        ),
    ];
    for (session, out, want, says) in cases {
        // SAFETY: `out` is NULL or writable; handles are only looked up, never dereferenced.
        let status = unsafe { concord_session_acceptance(session, out) };
        let message = last_error();
        assert_eq!(status, want, "{message}");
        assert!(
            message.starts_with("concord_session_acceptance: "),
            "{message}"
        );
        assert!(message.contains(says), "{message}");
        assert_eq!(stats, untouched, "a failed call leaves *out unchanged");
    }

    assert_eq!(concord_session_free(plain), Status::ConcordOk);
    assert_eq!(concord_session_free(speculative), Status::ConcordOk);
    let (status, _) = acceptance(speculative).unwrap_err();
    assert_eq!(status, Status::ConcordErrInvalidHandle, "a freed session");
    assert_eq!(concord_model_free(model), Status::ConcordOk);
}

/// Copies the fixture into a temporary directory with its MTP tensor `name` changed by `edit`
/// (`None`: removed; `Some(shape)`: the same bytes under another shape).
fn damaged_fixture(name: &str, edit: Option<Vec<usize>>) -> tempfile::TempDir {
    let src = mtp_fixture();
    let dst = tempfile::tempdir().unwrap();
    for file in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(file), dst.path().join(file)).unwrap();
    }
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors = Vec::new();
    let mut found = false;
    for (tensor, view) in st.tensors() {
        if tensor != name {
            tensors.push((tensor, view));
            continue;
        }
        found = true;
        if let Some(shape) = &edit {
            let reshaped =
                safetensors::tensor::TensorView::new(view.dtype(), shape.clone(), view.data());
            tensors.push((tensor, reshaped.unwrap()));
        }
    }
    assert!(found, "{name} is not in the fixture");
    let out = safetensors::serialize(tensors, None).unwrap();
    std::fs::write(dst.path().join("model.safetensors"), out).unwrap();
    dst
}

#[test]
fn a_missing_or_misshaped_mtp_tensor_is_named() {
    let eh_proj = "model.layers.2.eh_proj.weight";
    let missing = damaged_fixture(eh_proj, None);
    // Without load_mtp the MTP layer is not needed: the damaged copy still loads.
    let model = load(missing.path(), false);
    assert_eq!(concord_model_free(model), Status::ConcordOk);
    let (status, message) = try_load(missing.path(), true).unwrap_err();
    assert_eq!(status, Status::ConcordErrModel, "{message}");
    assert!(message.starts_with("concord_model_load: "), "{message}");
    assert!(message.contains(eh_proj), "{message}");

    // eh_proj is [hidden, 2 * hidden] = [80, 160]; stored transposed it must be refused.
    let misshaped = damaged_fixture(eh_proj, Some(vec![160, 80]));
    let (status, message) = try_load(misshaped.path(), true).unwrap_err();
    assert_eq!(status, Status::ConcordErrModel, "{message}");
    assert!(message.contains(eh_proj), "{message}");
    assert!(message.contains("[80, 160]"), "{message}");
}
