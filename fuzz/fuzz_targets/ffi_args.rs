//! The C ABI driven in-process with arbitrary arguments a correct C host may pass: NULL or valid
//! pointers with the stated lengths, stale/foreign handle values (the registry rejects them
//! without dereferencing), non-UTF-8 strings, arbitrary lengths, flags and sampling parameters.
//! Every call must return a status; a panic or abort is a crash.
#![no_main]

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::OnceLock;

use concord::*;
use libfuzzer_sys::fuzz_target;

struct Model(*mut ConcordModel);
// SAFETY: the C API documents model handles as usable from any thread.
unsafe impl Send for Model {}
// SAFETY: as above.
unsafe impl Sync for Model {}

fn model() -> *mut ConcordModel {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let params = concord_model_default_params();
            let mut m = ptr::null_mut();
            // SAFETY: a static path, valid params and out pointer.
            let status = unsafe { concord_model_load(concord_demo_model_path(), &params, &mut m) };
            assert_eq!(status, Status::ConcordOk);
            Model(m)
        })
        .0
}

/// Reads the input a byte at a time (0 once it runs out).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn f32(&mut self) -> f32 {
        f32::from_bits(self.u32())
    }
    /// Up to 255 bytes, NUL-free (any other byte, so often not UTF-8).
    fn string(&mut self) -> CString {
        let n = usize::from(self.byte()).min(self.0.len());
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        CString::new(s.iter().map(|&b| b.max(1)).collect::<Vec<u8>>()).expect("no NUL")
    }
    /// NULL, the live model, or a value that is no handle (stale or foreign).
    fn handle(&mut self) -> *mut ConcordModel {
        match self.byte() % 4 {
            0 => ptr::null_mut(),
            1 => 0x1000 as *mut ConcordModel,
            _ => model(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let op = input.byte();
    let model = input.handle();
    let capacity = usize::from(input.byte() % 64);
    let mut ids = vec![0u32; capacity];
    // NULL with capacity 0 (a size query) or a buffer of exactly `capacity`.
    let ids_ptr = if capacity == 0 && input.byte() % 2 == 0 {
        ptr::null_mut()
    } else {
        ids.as_mut_ptr()
    };
    let mut n_out = 0usize;
    let n_out_ptr: *mut usize = if input.byte() % 8 == 0 {
        ptr::null_mut()
    } else {
        &mut n_out
    };
    match op % 6 {
        0 => {
            let text = input.string();
            let text_ptr = if input.byte() % 8 == 0 {
                ptr::null()
            } else {
                text.as_ptr()
            };
            // SAFETY: NULL or valid pointers with the stated capacity.
            unsafe {
                concord_tokenize(
                    model,
                    text_ptr,
                    input.byte() % 2 == 0,
                    ids_ptr,
                    capacity,
                    n_out_ptr,
                )
            };
        }
        1 => {
            let n = usize::from(input.byte() % 16);
            let tokens: Vec<u32> = (0..n).map(|_| input.u32()).collect();
            let tokens_ptr = if n == 0 && input.byte() % 2 == 0 {
                ptr::null()
            } else {
                tokens.as_ptr()
            };
            let cap = usize::from(input.byte());
            let mut text = vec![0 as c_char; cap];
            let text_ptr = if cap == 0 {
                ptr::null_mut()
            } else {
                text.as_mut_ptr()
            };
            // SAFETY: NULL or valid pointers with the stated lengths.
            unsafe {
                concord_detokenize(
                    model,
                    tokens_ptr,
                    n,
                    input.byte() % 2 == 0,
                    text_ptr,
                    cap,
                    n_out_ptr,
                )
            };
        }
        2 | 3 => {
            let n = usize::from(input.byte() % 4);
            let strings: Vec<(CString, CString, u8)> = (0..n)
                .map(|_| (input.string(), input.string(), input.byte()))
                .collect();
            let messages: Vec<ChatMessage> = strings
                .iter()
                .map(|(role, content, nulls)| ChatMessage {
                    role: if nulls % 8 == 0 {
                        ptr::null()
                    } else {
                        role.as_ptr()
                    },
                    content: if nulls % 8 == 1 {
                        ptr::null()
                    } else {
                        content.as_ptr()
                    },
                })
                .collect();
            let messages_ptr = if n == 0 && input.byte() % 2 == 0 {
                ptr::null()
            } else {
                messages.as_ptr()
            };
            let agp = input.byte() % 2 == 0;
            // SAFETY: NULL or valid pointers with the stated lengths.
            unsafe {
                if op % 6 == 2 {
                    concord_chat_template(model, messages_ptr, n, agp, ids_ptr, capacity, n_out_ptr)
                } else {
                    let allow = input.byte() % 2 == 0;
                    concord_chat_template_ex(
                        model,
                        messages_ptr,
                        n,
                        agp,
                        allow,
                        ids_ptr,
                        capacity,
                        n_out_ptr,
                    )
                }
            };
        }
        4 => {
            let n = usize::from(input.byte() % 8);
            let prompt: Vec<u32> = (0..n).map(|_| input.u32() % 600).collect();
            let mut params = concord_generate_params_default();
            params.max_new_tokens = usize::from(input.byte() % 4);
            params.temperature = input.f32();
            params.top_k = input.u32();
            params.top_p = input.f32();
            params.seed = u64::from(input.u32());
            params.ignore_eos = input.byte() % 2 == 0;
            let mut session = ptr::null_mut();
            // SAFETY: valid pointers with the stated lengths.
            let status =
                unsafe { concord_session_new(model, prompt.as_ptr(), n, &params, &mut session) };
            if status == Status::ConcordOk {
                let mut token = 0u32;
                // SAFETY: a live session and a writable output.
                unsafe { concord_session_next(session, &mut token) };
                concord_session_free(session);
            }
        }
        _ => {
            let _ = concord_backend_name(usize::from(input.byte()));
            // SAFETY: NULL or a writable usize.
            unsafe { concord_model_n_vocab(model, n_out_ptr) };
        }
    }
});
