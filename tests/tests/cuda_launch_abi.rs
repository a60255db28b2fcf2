//! The CUDA backend passes the argument lists the shared host code builds. OpenCL checks
//! those lists against its kernel-argument information on every launch (and CI runs every
//! conformance case on PoCL); this test holds the same lists against the parameter lists
//! NVRTC gives the CUDA kernels, read from the PTX, so a CUDA launch's argument layout is
//! checked without a GPU.
use std::collections::BTreeMap;

use concord_ops::OpKind;
use concord_tests::launch_recorder::{launches_of_conformance_cases, ArgKind};

#[test]
fn every_cuda_launch_matches_the_kernels_ptx_parameters() {
    let (launched_by_op, cases) = launches_of_conformance_cases();
    let mut checked = 0;
    for &op in OpKind::ALL {
        let signatures = match concord_backend_cuda::kernel_signatures(op, "compute_80") {
            Ok(s) => s,
            Err(e) if std::env::var("CONCORD_REQUIRE_NVRTC").is_ok_and(|v| v == "1") => {
                panic!("cuda nvrtc: {e}")
            }
            Err(e) => {
                println!("SKIP cuda launch ABI: {e}");
                return;
            }
        };
        let ptx: BTreeMap<String, Vec<String>> = signatures.into_iter().collect();
        let launched = launched_by_op
            .get(op.name())
            .unwrap_or_else(|| panic!("no conformance case launches {op}"));
        for (kernel, args) in launched {
            let params = ptx
                .get(kernel)
                .unwrap_or_else(|| panic!("{op}: the host launches {kernel}, the PTX lacks it"));
            // Device pointers are 64-bit in PTX.
            let passed: Vec<&str> = args
                .iter()
                .map(|a| match a {
                    ArgKind::Mem | ArgKind::U64 => ".u64",
                    ArgKind::U32 => ".u32",
                    ArgKind::F32 => ".f32",
                })
                .collect();
            assert_eq!(
                params, &passed,
                "{op}: kernel {kernel} takes {params:?}, the host passes {passed:?}"
            );
            checked += 1;
        }
        // Every kernel the program defines is launched by some case, so none goes unchecked.
        for name in concord_kernels::kernel_names(op) {
            assert!(
                launched.iter().any(|(k, _)| k == name),
                "{op}: no conformance case launches kernel {name}"
            );
        }
    }
    println!("{checked} distinct CUDA launch signatures from {cases} cases match the PTX");
}
