//! The CUDA backend without a GPU: probing reports why it cannot run, and every shared kernel
//! compiles with NVRTC when NVRTC can be found (`CONCORD_NVRTC_PATH`, see ci/install-nvrtc.sh).

use concord_core::Error;

#[test]
fn probe_reports_unavailable_without_panicking() {
    match concord_backend_cuda::probe() {
        Err(Error::Unavailable { backend, reason }) => {
            assert_eq!(backend, "cuda");
            assert!(!reason.is_empty());
            println!("cuda unavailable: {reason}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the CUDA backend has no device execution yet and must not probe"),
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
