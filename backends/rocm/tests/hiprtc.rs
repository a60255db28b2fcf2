//! The ROCm backend's probe and the hiprtc compile check of every shared kernel program.
//!
//! hiprtc is opened at run time: where it cannot be loaded the compile tests print
//! `SKIP rocm hiprtc: <reason>` and pass, unless `CONCORD_REQUIRE_HIPRTC=1` (CI machines that
//! install Debian's libamdhip64-dev) turns the skip into a failure.

use std::path::Path;

use concord_backend_rocm::{check_kernels_isolated_with, hiprtc_info, probe, KernelCheck};
use concord_core::Error;

/// The helper binary cargo built for these tests.
const HELPER: &str = env!("CARGO_BIN_EXE_concord-hiprtc-check");

/// hiprtc's description, or `None` after printing the SKIP line (panics when it is required).
fn hiprtc_or_skip() -> Option<String> {
    match hiprtc_info() {
        Ok(info) => Some(info),
        Err(e) => {
            let required = std::env::var("CONCORD_REQUIRE_HIPRTC").is_ok_and(|v| v == "1");
            assert!(!required, "CONCORD_REQUIRE_HIPRTC=1 but {e}");
            println!("SKIP rocm hiprtc: {e}");
            None
        }
    }
}

#[test]
fn probe_reports_unavailable_without_panicking() {
    match probe() {
        Err(Error::Unavailable { backend, reason }) => {
            assert_eq!(backend, "rocm");
            assert!(!reason.is_empty());
            println!("rocm probe: {reason}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("device execution is not implemented; probe must not succeed"),
    }
}

#[test]
fn every_kernel_compiles_with_hiprtc_for_gfx90a_gfx908_gfx1030() {
    let Some(info) = hiprtc_or_skip() else {
        return;
    };
    println!("hiprtc {info}");
    // One child process per target, run side by side.
    let results: Vec<(&str, Vec<KernelCheck>)> = std::thread::scope(|s| {
        let handles: Vec<_> = ["gfx90a", "gfx908", "gfx1030"]
            .into_iter()
            .map(|arch| {
                s.spawn(move || (arch, check_kernels_isolated_with(Path::new(HELPER), arch)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (arch, r) = h.join().expect("check thread");
                (arch, r.unwrap_or_else(|e| panic!("{arch}: {e}")))
            })
            .collect()
    });
    let mut failures = Vec::new();
    for (arch, checks) in &results {
        assert_eq!(checks.len(), concord_ops::OpKind::ALL.len(), "{arch}");
        for c in checks {
            println!("{arch} {}: {}", c.op, c.ok);
            if !c.ok {
                failures.push(format!("{arch} {}: {}", c.op, c.message));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn crashing_target_is_reported_not_fatal() {
    let Some(info) = hiprtc_or_skip() else {
        return;
    };
    // Debian's hiprtc (ROCm 5.2, whose hiprtcVersion says 9.0) aborts the process on gfx942;
    // newer versions compile for it. So the test asserts that the caller survives, that every
    // op has an entry, and that where the child crashed every unfinished entry says so.
    let checks = check_kernels_isolated_with(Path::new(HELPER), "gfx942")
        .unwrap_or_else(|e| panic!("gfx942 with hiprtc {info}: {e}"));
    assert_eq!(checks.len(), concord_ops::OpKind::ALL.len());
    let crashed = |c: &KernelCheck| {
        c.message
            .starts_with("hiprtc crashed compiling for gfx942 (signal ")
    };
    if checks.iter().any(crashed) {
        assert!(checks.iter().all(|c| c.ok || crashed(c)), "{checks:#?}");
    } else {
        assert!(checks.iter().all(|c| c.ok || !c.message.is_empty()));
    }
    println!("gfx942 with hiprtc {info}: {}", checks[0].message);
}

#[test]
fn malformed_target_names_are_rejected_before_hiprtc() {
    for arch in ["sm_80", "gfx", "gfx90a;rm", "gfx90a:xnack"] {
        assert!(
            matches!(
                check_kernels_isolated_with(Path::new(HELPER), arch),
                Err(Error::InvalidArgument(_))
            ),
            "{arch}"
        );
    }
}
