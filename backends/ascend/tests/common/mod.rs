//! Builds the test-only ACL stand-in (backends/ascend/standin/acl_standin.c) with the host C
//! compiler into the tests' temporary directory, once per test binary. The stand-in is a
//! plumbing test, not Ascend hardware: it runs the kernels on the host CPU.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use concord_ops::Backend;

/// The stand-in's source.
pub fn standin_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("standin/acl_standin.c")
}

/// The built stand-in library (not named libascendcl.so, so no search ever finds it).
pub fn standin_library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("acl-standin");
        std::fs::create_dir_all(&dir).expect("create the stand-in directory");
        let out = dir.join(format!("libconcord_acl_standin-{}.so", std::process::id()));
        let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(standin_source())
            .args(["-ldl", "-lpthread"])
            .status()
            .expect("run the host C compiler (cc) to build the ACL stand-in");
        assert!(status.success(), "the ACL stand-in did not build");
        // Compiled kernels go to a cache of this test run only.
        let cache = dir.join(format!("cache-{}", std::process::id()));
        std::env::set_var(concord_kernels::code_cache::CACHE_DIR_ENV, &cache);
        out
    })
}

/// The Ascend backend opened on the stand-in.
pub fn standin_backend() -> Arc<dyn Backend> {
    static BACKEND: OnceLock<Arc<dyn Backend>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            concord_backend_ascend::probe_library(standin_library())
                .unwrap_or_else(|e| panic!("the Ascend backend on the stand-in: {e}"))
        })
        .clone()
}

/// The aclnn stand-in (backends/ascend/standin/aclnn_standin.c) built as `libopapi.so`, with
/// `libnnopbase.so` a link to it, in a directory of this test run: `(opapi, nnopbase)`.
pub fn aclnn_standin_libraries() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("acl-standin")
            .join(format!("aclnn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the aclnn stand-in directory");
        let opapi = dir.join("libopapi.so");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("standin/aclnn_standin.c");
        let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args([
                "-shared",
                "-fPIC",
                "-O1",
                "-ffp-contract=off",
                "-Wall",
                "-Werror",
                "-o",
            ])
            .arg(&opapi)
            .arg(source)
            .status()
            .expect("run the host C compiler (cc) to build the aclnn stand-in");
        assert!(status.success(), "the aclnn stand-in did not build");
        let nnopbase = dir.join("libnnopbase.so");
        let _ = std::fs::remove_file(&nnopbase);
        std::os::unix::fs::symlink("libopapi.so", &nnopbase).expect("link libnnopbase.so");
        (opapi, nnopbase)
    })
}

/// The Ascend backend in fast mode on the ACL and aclnn stand-ins.
pub fn standin_fast_backend() -> Arc<dyn Backend> {
    static BACKEND: OnceLock<Arc<dyn Backend>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let (opapi, nnopbase) = aclnn_standin_libraries();
            concord_backend_ascend::probe_library_fast(standin_library(), opapi, nnopbase)
                .unwrap_or_else(|e| panic!("the Ascend backend in fast mode on the stand-in: {e}"))
        })
        .clone()
}

/// How many times the aclnn stand-in ran aclnnMatmul (`kind` 1) or aclnnGroupedMatmulV2
/// (`kind` 2) in this process.
pub fn aclnn_standin_runs(kind: i32) -> u64 {
    let (opapi, _) = aclnn_standin_libraries();
    // SAFETY: the stand-in is already loaded by the backend (dlopen returns the same
    // instance) and exports `uint64_t concord_aclnn_standin_runs(int)`.
    unsafe {
        let lib = libloading::Library::new(opapi).expect("open the aclnn stand-in");
        let runs: libloading::Symbol<unsafe extern "C" fn(i32) -> u64> = lib
            .get(b"concord_aclnn_standin_runs\0")
            .expect("the stand-in's run counter");
        runs(kind)
    }
}
