//! Text: tokenize, detokenize, chat template.

use std::ffi::c_char;

use concord_runtime::text::{ChatMessage as RtChatMessage, ChatOptions};

use crate::args::{opt_str_arg, slice_arg, str_arg, Out, OutBuf};
use crate::model::{ConcordModel, MODELS};
use crate::status::{guard, FfiResult, Status};

/// Most ids `concord_detokenize` accepts in one call.
const MAX_DETOKENIZE_IDS: usize = 1 << 28;
/// Most messages `concord_chat_template` accepts in one call.
const MAX_CHAT_MESSAGES: usize = 1 << 20;

/// One message of a conversation for `concord_chat_template`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ChatMessage {
    /// `"system"`, `"user"`, `"assistant"` or `"tool"`; must not be NULL.
    pub role: *const c_char,
    /// The message text; NULL for an assistant turn without text.
    pub content: *const c_char,
}

/// Stores `ids` in the caller's buffer and their count in `*n_out`.
///
/// # Safety
/// As for [`OutBuf::fill`]; `n_out` checked and writable.
unsafe fn deliver_ids(ids: &[u32], buf: &OutBuf<u32>, n_out: &Out<usize>) -> FfiResult<Status> {
    // SAFETY: writable (caller's contract), set even when the buffer is too small.
    unsafe { n_out.set(ids.len()) };
    // SAFETY: forwarded contract.
    unsafe { buf.fill(ids, ids.len(), "the token ids") }?;
    Ok(Status::ConcordOk)
}

/// Tokenizes `text` (special-token text such as `<｜User｜>` becomes that token); `add_bos`
/// puts the BOS id first when the tokenizer has one. Stores the ids in `ids` and their count in
/// `*n_out`. When `capacity` is too small (0 with `ids` NULL is a size query), returns
/// `CONCORD_ERR_BUFFER_TOO_SMALL` with the needed count in `*n_out` and writes no ids.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL pointer, non-UTF-8 text),
/// `CONCORD_ERR_INVALID_HANDLE`, `CONCORD_ERR_BUFFER_TOO_SMALL`.
///
/// Thread safety: concurrent calls on one model are safe.
///
/// # Safety
/// `text` must be NUL-terminated, `ids` writable for `capacity` ids, `n_out` writable.
#[no_mangle]
pub unsafe extern "C" fn concord_tokenize(
    model: *const ConcordModel,
    text: *const c_char,
    add_bos: bool,
    ids: *mut u32,
    capacity: usize,
    n_out: *mut usize,
) -> Status {
    guard("concord_tokenize", || {
        let n_out = Out::new(n_out, "n_out")?;
        let buf = OutBuf::new(ids, capacity, "ids")?;
        // SAFETY: NUL-terminated if non-NULL (caller's contract).
        let text = unsafe { str_arg(text, "text") }?;
        let model = MODELS.get(model, "model")?;
        let tokens = model.tokenizer.encode(text, add_bos)?;
        // SAFETY: buffers as promised by the caller.
        unsafe { deliver_ids(&tokens, &buf, &n_out) }
    })
}

/// Decodes `n` ids (`1 ≤ n ≤ 2^28`) into UTF-8 text; `skip_special` drops special tokens such as
/// BOS/EOS. Ids the tokenizer does not define are skipped; bytes that do not form UTF-8 become
/// U+FFFD. Stores the text's length in bytes (without the NUL) in `*len_out` and the text,
/// NUL-terminated, in `buf`. When `capacity < *len_out + 1` (0 with `buf` NULL is a size
/// query), returns `CONCORD_ERR_BUFFER_TOO_SMALL` and leaves `buf` an empty string (if
/// `capacity > 0`).
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL pointer, `n` 0 or too large),
/// `CONCORD_ERR_INVALID_HANDLE`, `CONCORD_ERR_BUFFER_TOO_SMALL`.
///
/// Thread safety: concurrent calls on one model are safe.
///
/// # Safety
/// `ids` must hold `n` ids, `buf` be writable for `capacity` bytes, `len_out` writable.
#[no_mangle]
pub unsafe extern "C" fn concord_detokenize(
    model: *const ConcordModel,
    ids: *const u32,
    n: usize,
    skip_special: bool,
    buf: *mut c_char,
    capacity: usize,
    len_out: *mut usize,
) -> Status {
    guard("concord_detokenize", || {
        let len_out = Out::new(len_out, "len_out")?;
        let buf = OutBuf::new(buf, capacity, "buf")?;
        // SAFETY: `ids` holds `n` ids (caller's contract).
        let ids = unsafe { slice_arg(ids, n, MAX_DETOKENIZE_IDS, "ids") }?;
        let model = MODELS.get(model, "model")?;
        let mut text = model.tokenizer.decode(ids, skip_special).into_bytes();
        // SAFETY: writable (caller's contract).
        unsafe { len_out.set(text.len()) };
        let len = text.len();
        text.push(0);
        let text: Vec<c_char> = text.into_iter().map(|b| b as c_char).collect();
        // SAFETY: `buf` writable for `capacity` bytes (caller's contract).
        unsafe {
            buf.set_first(0);
            buf.fill(&text, len + 1, "the text (with its NUL)")
        }?;
        Ok(Status::ConcordOk)
    })
}

/// Renders `n` messages (`1 ≤ n ≤ 2^20`) with the model's chat template (from
/// tokenizer_config.json, as transformers' `apply_chat_template`) and tokenizes the result;
/// `add_generation_prompt` ends it with the assistant prefix. Message contents are text:
/// special-token text inside them (`<｜Assistant｜>`, …) is not a control token, so a message
/// cannot forge a turn (`concord_chat_template_ex` can allow it). Ids and counts as for
/// `concord_tokenize`.
///
/// Errors: `CONCORD_ERR_INVALID_ARGUMENT` (NULL pointer or role, non-UTF-8 text, `n` 0 or too
/// large, no chat template, the template rejected the conversation or ran too long),
/// `CONCORD_ERR_INVALID_HANDLE`, `CONCORD_ERR_BUFFER_TOO_SMALL`.
///
/// Thread safety: concurrent calls on one model are safe.
///
/// # Safety
/// `messages` must hold `n` messages with NUL-terminated strings, `ids` be writable for
/// `capacity` ids, `n_out` writable.
#[no_mangle]
pub unsafe extern "C" fn concord_chat_template(
    model: *const ConcordModel,
    messages: *const ChatMessage,
    n: usize,
    add_generation_prompt: bool,
    ids: *mut u32,
    capacity: usize,
    n_out: *mut usize,
) -> Status {
    let options = ChatOptions {
        add_generation_prompt,
        allow_special_tokens_in_content: false,
    };
    // SAFETY: forwarded contract.
    guard("concord_chat_template", || unsafe {
        chat_template(model, messages, n, options, ids, capacity, n_out)
    })
}

/// `concord_chat_template` with `allow_special_tokens_in_content`: when true, special-token
/// text inside a message becomes that control token, as transformers does (a user can then
/// forge turns); when false, the same as `concord_chat_template`.
///
/// Errors, thread safety and safety as for `concord_chat_template`.
///
/// # Safety
/// `messages` must hold `n` messages with NUL-terminated strings, `ids` be writable for
/// `capacity` ids, `n_out` writable.
// The C signature is the contract: one argument more than `concord_chat_template`.
#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub unsafe extern "C" fn concord_chat_template_ex(
    model: *const ConcordModel,
    messages: *const ChatMessage,
    n: usize,
    add_generation_prompt: bool,
    allow_special_tokens_in_content: bool,
    ids: *mut u32,
    capacity: usize,
    n_out: *mut usize,
) -> Status {
    let options = ChatOptions {
        add_generation_prompt,
        allow_special_tokens_in_content,
    };
    // SAFETY: forwarded contract.
    guard("concord_chat_template_ex", || unsafe {
        chat_template(model, messages, n, options, ids, capacity, n_out)
    })
}

/// The body of both chat-template functions.
///
/// # Safety
/// As for `concord_chat_template`.
unsafe fn chat_template(
    model: *const ConcordModel,
    messages: *const ChatMessage,
    n: usize,
    options: ChatOptions,
    ids: *mut u32,
    capacity: usize,
    n_out: *mut usize,
) -> FfiResult<Status> {
    let n_out = Out::new(n_out, "n_out")?;
    let buf = OutBuf::new(ids, capacity, "ids")?;
    // SAFETY: `messages` holds `n` messages (caller's contract).
    let messages = unsafe { slice_arg(messages, n, MAX_CHAT_MESSAGES, "messages") }?;
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            // SAFETY: NUL-terminated strings if non-NULL (caller's contract).
            let role = unsafe { str_arg(m.role, &format!("messages[{i}].role")) }?;
            // SAFETY: as above.
            let content = unsafe { opt_str_arg(m.content, &format!("messages[{i}].content")) }?;
            Ok(RtChatMessage {
                role: role.to_owned(),
                content: content.map(str::to_owned),
                ..Default::default()
            })
        })
        .collect::<FfiResult<Vec<_>>>()?;
    let model = MODELS.get(model, "model")?;
    let tokens = model.tokenizer.apply_chat_with(&messages, options)?;
    // SAFETY: buffers as promised by the caller.
    unsafe { deliver_ids(&tokens, &buf, &n_out) }
}
