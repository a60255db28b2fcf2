//! The C API driven from Rust: results agree with the runtime used directly (the runtime is
//! the oracle for what the wrapper must pass through unchanged), sessions outlive their model,
//! and a model serves several threads at once. Misuse is covered by `tests/misuse.c`.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use std::ptr;

use concord::*;

mod common;
use common::{drain, last_error};
use concord_runtime::text::{ChatMessage as RtMessage, Tokenizer};
use concord_runtime::{open_backend, GenerateParams as RtParams, LoadOptions, Model};

fn demo_dir() -> String {
    // SAFETY: a static NUL-terminated string.
    unsafe { CStr::from_ptr(concord_demo_model_path()) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// Model handles may be used from any thread (the C API's contract).
#[derive(Clone, Copy)]
struct Handle(*mut ConcordModel);
// SAFETY: the C API documents concurrent use of a model from several threads as safe.
unsafe impl Send for Handle {}

fn load() -> Handle {
    let dir = CString::new(demo_dir()).unwrap();
    let params = concord_model_default_params();
    let mut model = ptr::null_mut();
    // SAFETY: valid string, params and out pointer.
    let status = unsafe { concord_model_load(dir.as_ptr(), &params, &mut model) };
    assert_eq!(status, Status::ConcordOk, "{}", last_error());
    Handle(model)
}

fn tokenize(model: Handle, text: &str) -> Vec<u32> {
    let text = CString::new(text).unwrap();
    let mut n = 0;
    // SAFETY: size query with a NULL buffer of capacity 0.
    let status =
        unsafe { concord_tokenize(model.0, text.as_ptr(), true, ptr::null_mut(), 0, &mut n) };
    assert_eq!(status, Status::ConcordErrBufferTooSmall);
    let mut ids = vec![0u32; n];
    // SAFETY: `ids` holds n elements.
    let status =
        unsafe { concord_tokenize(model.0, text.as_ptr(), true, ids.as_mut_ptr(), n, &mut n) };
    assert_eq!(status, Status::ConcordOk, "{}", last_error());
    ids
}

/// Tokens of a session run to completion.
fn session_tokens(model: Handle, prompt: &[u32], params: &GenerateParams) -> Vec<u32> {
    let mut session = ptr::null_mut();
    // SAFETY: valid pointers; `prompt` holds prompt.len() ids.
    let status = unsafe {
        concord_session_new(model.0, prompt.as_ptr(), prompt.len(), params, &mut session)
    };
    assert_eq!(status, Status::ConcordOk, "{}", last_error());
    let tokens = drain(session);
    assert_eq!(concord_session_free(session), Status::ConcordOk);
    tokens
}

fn runtime_model(dir: &Path) -> Model {
    let backend = open_backend("cpu").unwrap();
    Model::load(dir, backend, &LoadOptions::default(), &mut |_, _| true).unwrap()
}

#[test]
fn results_match_the_runtime() {
    let dir = demo_dir();
    let model = load();
    let tokenizer = Tokenizer::from_dir(Path::new(&dir)).unwrap();
    let reference = runtime_model(Path::new(&dir));
    let text = "It was the best of times,";

    let prompt = tokenize(model, text);
    assert_eq!(prompt, tokenizer.encode(text, true).unwrap());

    // Detokenize: length query, then the text.
    let mut len = 0;
    // SAFETY: valid ids; size query.
    let status = unsafe {
        concord_detokenize(
            model.0,
            prompt.as_ptr(),
            prompt.len(),
            true,
            ptr::null_mut(),
            0,
            &mut len,
        )
    };
    assert_eq!(status, Status::ConcordErrBufferTooSmall);
    let mut buf = vec![0 as c_char; len + 1];
    // SAFETY: `buf` holds len + 1 bytes.
    let status = unsafe {
        concord_detokenize(
            model.0,
            prompt.as_ptr(),
            prompt.len(),
            true,
            buf.as_mut_ptr(),
            len + 1,
            &mut len,
        )
    };
    assert_eq!(status, Status::ConcordOk);
    // SAFETY: NUL-terminated by concord_detokenize.
    let decoded = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(decoded, tokenizer.decode(&prompt, true));
    assert_eq!(decoded.len(), len);

    // Chat template.
    let (system, user) = (
        CString::new("system").unwrap(),
        CString::new("user").unwrap(),
    );
    let (brief, hello) = (
        CString::new("Be brief.").unwrap(),
        CString::new("Hello").unwrap(),
    );
    let messages = [
        ChatMessage {
            role: system.as_ptr(),
            content: brief.as_ptr(),
        },
        ChatMessage {
            role: user.as_ptr(),
            content: hello.as_ptr(),
        },
    ];
    let mut ids = vec![0u32; 512];
    let mut n = 0;
    // SAFETY: two messages of valid strings; `ids` holds 512.
    let status = unsafe {
        concord_chat_template(
            model.0,
            messages.as_ptr(),
            2,
            true,
            ids.as_mut_ptr(),
            ids.len(),
            &mut n,
        )
    };
    assert_eq!(status, Status::ConcordOk, "{}", last_error());
    let expected = tokenizer
        .apply_chat(
            &[RtMessage::system("Be brief."), RtMessage::user("Hello")],
            true,
        )
        .unwrap();
    assert_eq!(&ids[..n], &expected[..]);

    // Greedy and sampled generation, both with EOS honoured and ignored.
    for (temperature, seed, ignore_eos) in [(0.0, 0, false), (0.8, 7, false), (0.8, 7, true)] {
        let mut params = concord_generate_params_default();
        params.max_new_tokens = 12;
        params.temperature = temperature;
        params.top_p = 0.9;
        params.seed = seed;
        params.ignore_eos = ignore_eos;
        let got = session_tokens(model, &prompt, &params);
        let rt = RtParams {
            max_new_tokens: 12,
            temperature,
            top_p: 0.9,
            seed,
            stop_tokens: if ignore_eos {
                Vec::new()
            } else {
                reference.config().eos_token_ids.clone()
            },
            ..RtParams::default()
        };
        let want: Vec<u32> = reference
            .generate(&prompt, rt)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got, want,
            "temperature {temperature} seed {seed} ignore_eos {ignore_eos}"
        );
    }
    assert_eq!(concord_model_free(model.0), Status::ConcordOk);
}

struct Collected {
    tokens: Vec<u32>,
    text: String,
}

unsafe extern "C" fn collect(token: u32, piece: *const c_char, user: *mut c_void) -> bool {
    // SAFETY: `user` is the `Collected` passed to concord_generate below.
    let out = unsafe { &mut *user.cast::<Collected>() };
    out.tokens.push(token);
    // SAFETY: NUL-terminated for the duration of the call.
    out.text
        .push_str(unsafe { CStr::from_ptr(piece) }.to_str().unwrap());
    true
}

#[test]
fn callback_generation_matches_sessions_and_pieces_make_the_text() {
    let model = load();
    let prompt = tokenize(model, "Once upon a time");
    let mut params = concord_generate_params_default();
    params.max_new_tokens = 20;
    params.ignore_eos = true;
    let mut out = Collected {
        tokens: Vec::new(),
        text: String::new(),
    };
    // SAFETY: valid pointers; `collect` matches the callback type; `out` outlives the call.
    let status = unsafe {
        concord_generate(
            model.0,
            prompt.as_ptr(),
            prompt.len(),
            &params,
            Some(collect),
            (&mut out as *mut Collected).cast(),
        )
    };
    assert_eq!(status, Status::ConcordOk, "{}", last_error());
    assert_eq!(out.tokens, session_tokens(model, &prompt, &params));
    let tokenizer = Tokenizer::from_dir(Path::new(&demo_dir())).unwrap();
    let full = tokenizer.decode(&out.tokens, true);
    assert!(full.starts_with(&out.text), "{full:?} vs {:?}", out.text);
    assert_eq!(concord_model_free(model.0), Status::ConcordOk);
}

#[test]
fn a_session_outlives_its_model_and_one_model_serves_threads() {
    let model = load();
    let prompt = tokenize(model, "It was the best of times,");
    let mut params = concord_generate_params_default();
    params.max_new_tokens = 8;
    params.ignore_eos = true;
    let expected = session_tokens(model, &prompt, &params);

    let results: Vec<Vec<u32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (prompt, params) = (&prompt, &params);
                s.spawn(move || session_tokens(model, prompt, params))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        assert_eq!(r, expected);
    }

    let mut session = ptr::null_mut();
    // SAFETY: valid pointers.
    let status = unsafe {
        concord_session_new(
            model.0,
            prompt.as_ptr(),
            prompt.len(),
            &params,
            &mut session,
        )
    };
    assert_eq!(status, Status::ConcordOk);
    assert_eq!(concord_model_free(model.0), Status::ConcordOk);
    let mut got = Vec::new();
    let mut token = 0;
    // SAFETY: live session (it keeps the freed model alive).
    while unsafe { concord_session_next(session, &mut token) } == Status::ConcordOk {
        got.push(token);
    }
    assert_eq!(got, expected);
    let mut logits = ptr::null();
    let mut n_vocab = 0;
    // SAFETY: writable outputs.
    let status = unsafe { concord_session_logits(session, &mut logits, &mut n_vocab) };
    assert_eq!(status, Status::ConcordOk);
    // SAFETY: n_vocab floats owned by the live session.
    let row = unsafe { std::slice::from_raw_parts(logits, n_vocab) };
    let argmax = (0..n_vocab).fold(0, |best, i| if row[i] > row[best] { i } else { best });
    assert_eq!(argmax as u32, *expected.last().unwrap());
    assert_eq!(concord_session_free(session), Status::ConcordOk);
    assert_eq!(
        concord_session_free(session),
        Status::ConcordErrInvalidHandle
    );
}

#[test]
fn backends_are_listed_and_probed() {
    let names: Vec<String> = (0..concord_backend_count())
        .map(|i| {
            // SAFETY: in range, static string.
            unsafe { CStr::from_ptr(concord_backend_name(i)) }
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names, concord_runtime::BACKEND_NAMES);
    for name in &names {
        let c = CString::new(name.as_str()).unwrap();
        let mut reason = [0x55 as c_char; 16];
        // SAFETY: 16-byte buffer.
        let status =
            unsafe { concord_backend_probe(c.as_ptr(), reason.as_mut_ptr(), reason.len()) };
        match open_backend(name) {
            Ok(_) => assert_eq!(status, Status::ConcordOk),
            Err(concord_core::Error::Unavailable { reason: why, .. }) => {
                assert_eq!(status, Status::ConcordErrUnavailable);
                // SAFETY: NUL-terminated within the buffer.
                let got = unsafe { CStr::from_ptr(reason.as_ptr()) }.to_str().unwrap();
                assert!(
                    why.starts_with(got) && got.len() <= 15,
                    "{got:?} vs {why:?}"
                );
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn handles_of_one_kind_are_not_the_other() {
    let model = load();
    let model_as_session = model.0.cast::<ConcordSession>();
    let mut token = 0;
    // SAFETY: the pointer is only looked up, never dereferenced.
    let status = unsafe { concord_session_next(model_as_session, &mut token) };
    assert_eq!(status, Status::ConcordErrInvalidHandle);
    assert!(
        last_error().starts_with("concord_session_next: "),
        "{}",
        last_error()
    );
    assert_eq!(
        concord_session_free(model_as_session),
        Status::ConcordErrInvalidHandle
    );
    assert_eq!(concord_model_free(model.0), Status::ConcordOk);
    assert_eq!(concord_model_free(model.0), Status::ConcordErrInvalidHandle);
}
