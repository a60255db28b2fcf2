//! The ROCm backend's probe, a smoke test of device execution where an AMD GPU is present,
//! and the hiprtc compile check of every shared kernel program.
//!
//! hiprtc is opened at run time: where it cannot be loaded the compile tests print
//! `SKIP rocm hiprtc: <reason>` and pass, unless `CONCORD_REQUIRE_HIPRTC=1` (CI machines that
//! install Debian's libamdhip64-dev) turns the skip into a failure.

use std::path::Path;

use concord_backend_rocm::{check_kernels_isolated_with, hiprtc_info, probe, KernelCheck};
use concord_core::{DType, Error};
use concord_ops::{Add, Backend, Embedding, Op, TensorArg};

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

/// Whether the ROCm kernel driver's device node exists: without it no HIP device can be
/// opened, so `probe` must report the backend unavailable.
fn kfd_present() -> bool {
    Path::new("/dev/kfd").exists()
}

#[test]
fn probe_reports_unavailable_without_panicking() {
    match probe() {
        Err(Error::Unavailable { backend, reason }) => {
            assert_eq!(backend, "rocm");
            assert!(!reason.is_empty());
            println!("rocm probe: {reason}");
        }
        Err(other) => panic!("probe must fail only with Unavailable, not {other}"),
        Ok(b) => {
            assert!(kfd_present(), "probe succeeded without /dev/kfd");
            assert_eq!(b.info().name, "rocm");
            println!("rocm probe: {} ({})", b.info().device, b.info().driver);
        }
    }
}

#[test]
fn probe_without_an_amd_gpu_is_unavailable_with_a_reason() {
    if kfd_present() {
        println!("SKIP: /dev/kfd exists (an AMD GPU may be present)");
        return;
    }
    let result = std::panic::catch_unwind(probe).expect("probe must not panic");
    match result {
        Err(Error::Unavailable { backend, reason }) => {
            assert_eq!(backend, "rocm");
            assert!(!reason.trim().is_empty());
        }
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(b) => panic!("probe succeeded without /dev/kfd: {}", b.info().device),
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// Where a HIP device is present: `add` of two F32 rows gives the sums' bits, and an
/// embedding id out of range is reported by the next read, as on every backend. Skipped (with
/// the reason printed) where `probe` finds no device.
#[test]
fn device_smoke_test_where_a_gpu_is_present() {
    let backend: std::sync::Arc<dyn Backend> = match probe() {
        Ok(b) => b,
        // With /dev/kfd a GPU is there to run on: failing to open it is a failure, not a skip.
        Err(e) if kfd_present() => {
            panic!("/dev/kfd exists but the rocm backend is unavailable: {e}")
        }
        Err(e) => {
            println!("SKIP rocm device: {e}");
            return;
        }
    };
    let n = 1000;
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 7.0).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 / (i as f32 + 1.0)).collect();
    let ab = backend.upload(&f32_bytes(&a)).unwrap();
    let bb = backend.upload(&f32_bytes(&b)).unwrap();
    let out = backend.alloc(n * 4).unwrap();
    let op: Op = Add { out: DType::F32 }.into();
    backend
        .run(
            &op,
            &[
                TensorArg::new(&ab, DType::F32, [1, n]),
                TensorArg::new(&bb, DType::F32, [1, n]),
            ],
            &[TensorArg::new(&out, DType::F32, [1, n])],
        )
        .unwrap();
    let mut got = vec![0u8; n * 4];
    backend.read(&out, 0, &mut got).unwrap();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(got, f32_bytes(&want));

    let ids = backend.upload(&7u32.to_ne_bytes()).unwrap();
    let table = backend.upload(&f32_bytes(&[0.0; 4])).unwrap();
    let row = backend.alloc(2 * 4).unwrap();
    let op: Op = Embedding { out: DType::F32 }.into();
    backend
        .run(
            &op,
            &[
                TensorArg::new(&ids, DType::U32, [1]),
                TensorArg::new(&table, DType::F32, [2, 2]),
            ],
            &[TensorArg::new(&row, DType::F32, [1, 2])],
        )
        .unwrap();
    let err = backend.synchronize().unwrap_err();
    assert!(err.to_string().contains("id 7"), "{err}");
    backend
        .synchronize()
        .expect("the status is cleared once reported");
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
        assert_eq!(
            checks.len(),
            concord_ops::OpKind::ALL.len() + concord_kernels::fast_ops().count(),
            "{arch}"
        );
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
    assert_eq!(
        checks.len(),
        concord_ops::OpKind::ALL.len() + concord_kernels::fast_ops().count()
    );
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

/// A helper that reports nothing and exits 0 (e.g. one built before a program existed) makes
/// every unreported program a failure naming the helper — never "0 failed".
#[test]
fn programs_a_helper_never_reports_are_failures() {
    let checks = check_kernels_isolated_with(Path::new("/bin/true"), "gfx90a")
        .expect("a silent helper is a result, not an error");
    assert!(!checks.is_empty());
    for c in &checks {
        assert!(!c.ok, "{}", c.op);
        assert!(
            c.message.contains("/bin/true did not report"),
            "{}",
            c.message
        );
    }
}
