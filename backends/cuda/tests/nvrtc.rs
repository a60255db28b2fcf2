//! The CUDA backend with or without a GPU: probing opens a device or reports why not, and every shared kernel
//! compiles with NVRTC when NVRTC can be found (`CONCORD_NVRTC_PATH`, see ci/install-nvrtc.sh).

use concord_core::Error;

/// Without a device the probe says why (`Unavailable` with a reason, never a panic); with one it
/// opens a backend named cuda, which must then run an op — the launch is checked against the
/// CPU reference bit for bit by `concord conformance --backends cpu,cuda` (ci/device-check.sh),
/// so here it is a visible SKIP line rather than a duplicate of that check.
#[test]
fn probe_gives_a_backend_or_a_reason_without_panicking() {
    match concord_backend_cuda::probe() {
        Ok(backend) => {
            assert_eq!(backend.info().name, "cuda");
            println!(
                "SKIP cuda device execution: a device is present ({}); run ci/device-check.sh",
                backend.info().device
            );
        }
        Err(Error::Unavailable { backend, reason }) => {
            assert_eq!(backend, "cuda");
            assert!(!reason.is_empty());
            println!("SKIP cuda device: {reason}");
        }
        Err(other) => panic!("probe must report Unavailable, got {other}"),
    }
}

#[test]
fn every_kernel_compiles_with_nvrtc_for_sm_80_and_sm_90() {
    let required = std::env::var("CONCORD_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for arch in ["sm_80", "sm_90"] {
        let checks = match concord_backend_cuda::check_kernels(arch) {
            Ok(c) => c,
            Err(Error::Unavailable { reason, .. }) if !required => {
                println!("SKIP cuda nvrtc: {reason}");
                return;
            }
            Err(e) => panic!("cuda nvrtc: {e}"),
        };
        assert_eq!(
            checks.len(),
            concord_ops::OpKind::ALL.len() + concord_kernels::fast_ops().count()
        );
        for c in checks {
            println!(
                "{arch} {}: {} {}",
                c.op,
                if c.ok { "ok" } else { "FAILED" },
                c.message
            );
            if !c.ok {
                failures.push(format!("{arch} {}", c.op));
            }
            if c.ok && c.op.ends_with(".fast") && !c.message.contains("tensor-core mma") {
                failures.push(format!("{arch} {}: no tensor-core count", c.op));
            }
        }
    }
    assert!(failures.is_empty(), "did not compile: {failures:?}");
}
