//! Every op's program compiles in all three dialects, and none contracts `a*b + c` into an FMA.
//!
//! Uses clang (Debian's `clang-15`, or `clang`) as a stand-in for NVRTC and hiprtc: it emits
//! LLVM IR for OpenCL C (spir64), CUDA (nvptx, with tests/shim/cuda.h instead of the CUDA
//! headers) and HIP (amdgcn, with tests/shim/hip.h). The IR must hold no `llvm.fmuladd`, no
//! `llvm.fma` and no `contract` flag: OpenCL by the prelude's `FP_CONTRACT OFF` pragma alone,
//! CUDA and HIP under `-ffp-contract=off` (the flag their backends pass, as -fmad=false for
//! NVRTC). Without clang the test prints `SKIP` and passes.
use std::path::{Path, PathBuf};
use std::process::Command;

use concord_kernels::{source, Target};
use concord_ops::OpKind;

fn clang() -> Option<&'static str> {
    ["clang-15", "clang"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn flags(target: Target, shims: &Path) -> Vec<String> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match target {
        Target::OpenCl => s(&[
            "-x",
            "cl",
            "-cl-std=CL1.2",
            "-Xclang",
            "-finclude-default-header",
            "-target",
            "spir64",
        ]),
        Target::Cuda => {
            let mut f = s(&[
                "-x",
                "cuda",
                "--cuda-device-only",
                "-nocudainc",
                "-nocudalib",
                "--cuda-gpu-arch=sm_80",
                "-ffp-contract=off",
                "-include",
            ]);
            f.push(shims.join("cuda.h").display().to_string());
            f
        }
        Target::Hip => {
            let mut f = s(&[
                "-x",
                "hip",
                "--cuda-device-only",
                "-nogpuinc",
                "-nogpulib",
                "--offload-arch=gfx90a",
                "-fms-extensions",
                "-ffp-contract=off",
                "-include",
            ]);
            f.push(shims.join("hip.h").display().to_string());
            f
        }
        // Not compiled here: an Ascend program needs the entry points backends/ascend adds,
        // and its tests compile every program through the test-only ACL stand-in.
        Target::Ascend => Vec::new(),
    }
}

#[test]
fn every_program_compiles_without_contraction_in_every_dialect() {
    let Some(clang) = clang() else {
        println!("SKIP kernels dialects: no clang on PATH");
        return;
    };
    let shims = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/shim");
    let dir = std::env::temp_dir().join(format!("concord-kernels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for target in [Target::OpenCl, Target::Cuda, Target::Hip] {
        for &op in OpKind::ALL {
            let ext = match target {
                Target::OpenCl => "cl",
                Target::Cuda => "cu",
                Target::Hip => "hip",
                Target::Ascend => "c",
            };
            let file = dir.join(format!("{}.{ext}", op.name()));
            std::fs::write(&file, source(target, op)).unwrap();
            let out = Command::new(clang)
                .args(flags(target, &shims))
                .args(["-O0", "-S", "-emit-llvm", "-o", "-"])
                .arg(&file)
                .output()
                .unwrap();
            let ir = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                failures.push(format!(
                    "{target:?} {op}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            } else if ["llvm.fmuladd", "llvm.fma", " contract "]
                .iter()
                .any(|p| ir.contains(p))
            {
                failures.push(format!("{target:?} {op}: the IR contracts into FMA"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
