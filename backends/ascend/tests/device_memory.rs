//! `Backend::memory` on the Ascend backend is `aclrtGetMemInfo(ACL_HBM_MEM)` (acl/acl_rt.h:
//! free and total bytes of the current device), which `serve` sizes its paged latent cache
//! from. On the test-only ACL stand-in (a plumbing test, not Ascend hardware): a 64 GiB
//! device whose free memory falls by what this process allocates.
mod common;

const MIB: usize = 1 << 20;

#[test]
fn memory_is_the_runtime_report_and_falls_by_what_we_allocate() {
    let backend = common::standin_backend();
    let before = backend
        .memory()
        .expect("aclrtGetMemInfo answers on the stand-in");
    assert_eq!(before.total, 64 << 30, "the stand-in's device is 64 GiB");
    assert!(before.free < before.total, "{before:?}");
    let buffer = backend.alloc(8 * MIB).expect("8 MiB");
    let during = backend.memory().expect("memory while holding a buffer");
    assert!(
        before.free - during.free >= 8 * MIB,
        "free memory fell by {} bytes for an 8 MiB buffer",
        before.free - during.free
    );
    drop(buffer);
    let after = backend.memory().expect("memory after the buffer is freed");
    assert_eq!(
        after.free, before.free,
        "freeing the buffer gives its memory back"
    );
}
