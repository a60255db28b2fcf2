//! The probe's error paths, without CANN: a broken libascendcl on the search path, a library
//! lacking a symbol, a failed aclInit and zero devices each give `Error::Unavailable` with a
//! reason naming what is wrong and where — never a panic. The last three run on the test-only
//! ACL stand-in (a plumbing test, not Ascend hardware). One test function: the cases set
//! process-wide environment variables, so they run in sequence. The kernels check takes the
//! same lock: the stand-in compiles through `system()`, and a `setenv` on another thread while
//! it forks can hand the child a freed environment (seen once in CI as a compiler failure).
mod common;

use std::path::Path;
use std::sync::Mutex;

/// Held by every test in this file: they mutate or read the process environment.
static ENVIRONMENT: Mutex<()> = Mutex::new(());

use concord_core::Error;

fn reason(r: concord_core::Result<std::sync::Arc<dyn concord_ops::Backend>>) -> String {
    match r {
        Err(Error::Unavailable { backend, reason }) => {
            assert_eq!(backend, "ascend");
            reason
        }
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("expected Unavailable, the backend opened"),
    }
}

#[test]
fn every_failure_to_open_is_unavailable_with_a_reason() {
    let _environment = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("probe-{}", std::process::id()));
    // A text file named libascendcl.so under $ASCEND_HOME_PATH/lib64.
    let lib64 = tmp.join("home/lib64");
    std::fs::create_dir_all(&lib64).unwrap();
    let broken = lib64.join("libascendcl.so");
    std::fs::write(&broken, "this is not a shared library\n").unwrap();
    std::env::set_var("ASCEND_HOME_PATH", tmp.join("home"));
    let why = reason(concord_backend_ascend::probe());
    assert!(why.contains(&broken.display().to_string()), "{why}");
    assert!(why.contains("does not load"), "{why}");
    // An empty file too; and `kernels check` reports the same file.
    std::fs::write(&broken, "").unwrap();
    let why = reason(concord_backend_ascend::probe());
    assert!(why.contains(&broken.display().to_string()), "{why}");
    match concord_backend_ascend::check_kernels("dav-2201") {
        Err(Error::Unavailable { reason, .. }) => {
            assert!(reason.contains(&broken.display().to_string()), "{reason}")
        }
        other => panic!("kernels check: {:?}", other.map(|v| v.len())),
    }
    // No library anywhere: the reason lists where it looked.
    std::env::set_var("ASCEND_HOME_PATH", tmp.join("nowhere"));
    let why = reason(concord_backend_ascend::probe());
    assert!(why.contains("libascendcl.so not found"), "{why}");
    assert!(
        why.contains(
            &tmp.join("nowhere/lib64/libascendcl.so")
                .display()
                .to_string()
        ),
        "{why}"
    );
    assert!(
        why.contains("/usr/local/Ascend/ascend-toolkit/latest/lib64"),
        "{why}"
    );
    std::env::remove_var("ASCEND_HOME_PATH");

    // A real shared library lacking the ACL symbols.
    let empty_c = tmp.join("empty.c");
    std::fs::write(&empty_c, "int concord_not_acl(void) { return 0; }\n").unwrap();
    let empty_so = tmp.join("libempty.so");
    let ok = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&empty_so)
        .arg(&empty_c)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let why = reason(concord_backend_ascend::probe_library(&empty_so));
    assert!(why.contains("lacks aclInit"), "{why}");
    assert!(why.contains(&empty_so.display().to_string()), "{why}");

    let standin = common::standin_library();
    std::env::set_var("CONCORD_ACL_STANDIN_FAIL_INIT", "1");
    let why = reason(concord_backend_ascend::probe_library(standin));
    assert!(why.contains("aclInit failed with aclError 100001"), "{why}");
    assert!(why.contains("stand-in: aclInit told to fail"), "{why}");
    std::env::remove_var("CONCORD_ACL_STANDIN_FAIL_INIT");

    std::env::set_var("CONCORD_ACL_STANDIN_DEVICES", "0");
    let why = reason(concord_backend_ascend::probe_library(standin));
    assert!(why.contains("no Ascend device"), "{why}");
    std::env::remove_var("CONCORD_ACL_STANDIN_DEVICES");

    // And with everything in place it opens, reporting the SoC and the arch chosen from it.
    let backend = concord_backend_ascend::probe_library(standin).expect("opens on the stand-in");
    assert!(
        backend.info().device.starts_with("Ascend910B3"),
        "{}",
        backend.info().device
    );
    assert!(
        backend.info().driver.contains("--npu-arch=dav-2201"),
        "{}",
        backend.info().driver
    );
}

#[test]
fn kernels_check_compiles_every_exact_program_on_the_standin() {
    let _environment = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    let checks =
        concord_backend_ascend::check_kernels_library(common::standin_library(), "dav-2201")
            .expect("check runs");
    assert_eq!(checks.len(), concord_ops::OpKind::ALL.len());
    for c in &checks {
        assert!(c.ok, "{}: {}", c.op, c.message);
    }
    let bad = concord_backend_ascend::check_kernels_library(common::standin_library(), "sm_80");
    assert!(bad.is_err());
}
