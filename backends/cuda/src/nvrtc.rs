//! Compile checks of the shared kernel sources with NVRTC: every op's program, assembled by
//! `concord-kernels` for [`Target::Cuda`], built with the options the numerics contract needs,
//! and its output inspected for the entry points and for instructions the contract forbids.

use std::path::PathBuf;

use concord_core::{Error, Result};
use concord_kernels::{all_programs, Program, Target};
use concord_ops::{KernelMode, OpKind};

use crate::sys::{Compiled, Nvrtc};

/// The environment variable naming libnvrtc: a file, or a directory holding `libnvrtc.so.12`
/// (the pip package `nvidia-cuda-nvrtc-cu12` puts it in `site-packages/nvidia/cuda_nvrtc/lib`).
pub const NVRTC_PATH_ENV: &str = "CONCORD_NVRTC_PATH";

/// The outcome of compiling one op's program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCheck {
    /// The op's name (`OpKind::name`).
    pub op: String,
    /// Whether it compiled, defines every kernel of `kernel_names(op)` and holds no
    /// instruction the numerics contract forbids.
    pub ok: bool,
    /// On success a summary (and any compiler warnings); on failure the compiler's log or the
    /// reason the output was rejected.
    pub message: String,
}

/// The NVRTC options that keep the numerics contract (docs/numerics.md): no contraction into
/// FMA, IEEE division and square root, subnormals kept. `arch` is `sm_XX` or `compute_XX`.
pub fn compile_options(arch: &str) -> Vec<String> {
    vec![
        format!("--gpu-architecture={arch}"),
        "--fmad=false".into(),
        "--prec-div=true".into(),
        "--prec-sqrt=true".into(),
        "--ftz=false".into(),
    ]
}

/// NVRTC's location and version (`"12.9 at /path/libnvrtc.so.12"`), or why it cannot be loaded.
pub fn nvrtc_info() -> Result<String> {
    let nvrtc = load()?;
    let (major, minor) = nvrtc.version().map_err(unavailable)?;
    Ok(format!("{major}.{minor} at {}", nvrtc.path.display()))
}

fn unavailable(reason: String) -> Error {
    Error::Unavailable {
        backend: "cuda".into(),
        reason,
    }
}

pub(crate) fn load() -> Result<Nvrtc> {
    let explicit = std::env::var_os(NVRTC_PATH_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    Nvrtc::load(explicit.as_deref()).map_err(unavailable)
}

/// The compute capability digits of `arch` (`sm_90a` → `90a`), if it is a valid name.
fn arch_digits(arch: &str) -> Option<(&str, bool)> {
    let (rest, cubin) = if let Some(r) = arch.strip_prefix("sm_") {
        (r, true)
    } else if let Some(r) = arch.strip_prefix("compute_") {
        (r, false)
    } else {
        return None;
    };
    let digits = rest.trim_end_matches(['a', 'f']);
    (digits.len() >= 2 && digits.bytes().all(|b| b.is_ascii_digit())).then_some((rest, cubin))
}

/// Compiles every program (one entry per [`concord_kernels::all_programs`], in that order:
/// each op's exact program, then the fast ones) for `arch`
/// (`sm_80`, `sm_90`, … or `compute_XX`). The PTX for the matching `compute_XX` is checked for
/// each entry point and for FMA, flush-to-zero and approximate instructions; for `sm_XX` the
/// program is also compiled to a cubin, so ptxas accepts it too.
///
/// `Err` only when NVRTC cannot be loaded ([`Error::Unavailable`] with the reason) or `arch` is
/// not an architecture name ([`Error::InvalidArgument`]); a program that fails is an entry with
/// `ok: false` and the compiler's log.
pub fn check_kernels(arch: &str) -> Result<Vec<KernelCheck>> {
    let Some((digits, cubin)) = arch_digits(arch) else {
        return Err(Error::invalid(format!(
            "cuda: {arch:?} is not an architecture name like sm_80 or compute_90"
        )));
    };
    let nvrtc = load()?;
    if let Some(supported) = nvrtc.supported_archs() {
        let number: i32 = digits.trim_end_matches(['a', 'f']).parse().unwrap_or(-1);
        if !supported.contains(&number) {
            let names: Vec<String> = supported.iter().map(|a| format!("sm_{a}")).collect();
            return Err(Error::invalid(format!(
                "cuda: this NVRTC ({}) does not compile for {arch}; it knows {}",
                nvrtc.path.display(),
                names.join(", ")
            )));
        }
    }
    let compute = format!("compute_{digits}");
    let programs = all_programs();
    Ok(std::thread::scope(|s| {
        let handles: Vec<_> = programs
            .iter()
            .map(|&program| {
                let (nvrtc, compute) = (&nvrtc, &compute);
                s.spawn(move || check_program(nvrtc, program, compute, cubin.then_some(arch)))
            })
            .collect();
        handles
            .into_iter()
            .zip(&programs)
            .map(|(h, program)| {
                h.join().unwrap_or_else(|_| KernelCheck {
                    op: program.name(),
                    ok: false,
                    message: "the compile check panicked".into(),
                })
            })
            .collect()
    }))
}

/// The parameter types of every kernel of `op` (its exact and fast kernels) as NVRTC
/// compiles them for `compute` (e.g. `compute_80`): `(kernel, [".u64", ".u32", ".f32", …])` in declaration order, read from the
/// PTX `.entry` directives. Pointers are `.u64`. Lets a test hold the host code's argument
/// lists against the CUDA kernels' real parameter lists without a GPU.
pub fn kernel_signatures(op: OpKind, compute: &str) -> Result<Vec<(String, Vec<String>)>> {
    let nvrtc = load()?;
    let src = Program::of(op, KernelMode::Fast).source(Target::Cuda);
    let file = format!("{}.cu", op.name());
    let output = nvrtc
        .compile(&src, &file, &compile_options(compute), false)
        .map_err(|e| Error::Backend {
            backend: "cuda".into(),
            message: e,
        })?;
    let (ptx, _) = compiled(output).map_err(|log| Error::Backend {
        backend: "cuda".into(),
        message: format!("{op}: {log}"),
    })?;
    Ok(ptx_entries(&String::from_utf8_lossy(&ptx)))
}

/// `(name, parameter types)` of every `.entry` in a PTX text.
fn ptx_entries(ptx: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = ptx;
    while let Some(at) = rest.find(".entry ") {
        rest = &rest[at + ".entry ".len()..];
        let Some(open) = rest.find('(') else { break };
        let name = rest[..open].trim().to_string();
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let params = rest[open + 1..open + close]
            .split(',')
            .filter_map(|p| {
                let mut words = p.split_whitespace();
                (words.next()? == ".param").then_some(())?;
                words
                    .find(|w| {
                        w.starts_with('.') && !w.starts_with(".align") && !w.starts_with(".ptr")
                    })
                    .map(str::to_string)
            })
            .collect();
        out.push((name, params));
        rest = &rest[open + close..];
    }
    out
}

fn check_program(nvrtc: &Nvrtc, program: Program, compute: &str, sm: Option<&str>) -> KernelCheck {
    let names = program.kernel_names();
    let result = (|| -> std::result::Result<String, String> {
        let src = program.source(Target::Cuda);
        let file = format!("{}.cu", program.name());
        let (ptx, log) = compiled(nvrtc.compile(&src, &file, &compile_options(compute), false)?)?;
        let ptx = String::from_utf8_lossy(&ptx).into_owned();
        for name in &names {
            if !ptx.contains(&format!(".entry {name}(")) {
                return Err(format!("{compute}: the PTX defines no kernel {name}"));
            }
        }
        if let Some(line) = forbidden_instruction(&ptx) {
            return Err(format!(
                "{compute}: the PTX holds an instruction the numerics contract forbids: {line}"
            ));
        }
        let mut summary = format!(
            "{} kernel(s), {compute} PTX {} bytes",
            names.len(),
            ptx.len()
        );
        if program.mode == KernelMode::Fast {
            let mmas = tensor_core_mmas(&ptx);
            if mmas == 0 && has_bf16_tensor_cores(compute) {
                return Err(format!(
                    "{compute}: the fast program uses no tensor-core mma instruction"
                ));
            }
            summary.push_str(&format!(", {mmas} tensor-core mma"));
        }
        let mut logs = vec![log];
        if let Some(sm) = sm {
            let (bin, log) = compiled(nvrtc.compile(&src, &file, &compile_options(sm), true)?)?;
            summary.push_str(&format!(", {sm} cubin {} bytes", bin.len()));
            logs.push(log);
        }
        for log in logs.into_iter().filter(|l| !l.is_empty()) {
            summary.push('\n');
            summary.push_str(&log);
        }
        Ok(summary)
    })();
    let (ok, message) = match result {
        Ok(m) => (true, m),
        Err(m) => (false, m),
    };
    KernelCheck {
        op: program.name(),
        ok,
        message,
    }
}

/// Whether `compute_XY` has BF16 `mma.sync` (Ampere, sm_80, and newer).
fn has_bf16_tensor_cores(compute: &str) -> bool {
    compute
        .trim_start_matches("compute_")
        .get(..2)
        .and_then(|d| d.parse::<u32>().ok())
        .is_some_and(|cc| cc >= 80)
}

/// How many `mma.sync` instructions a PTX text holds.
fn tensor_core_mmas(ptx: &str) -> usize {
    ptx.lines()
        .filter(|l| l.trim_start().starts_with("mma.sync"))
        .count()
}

fn compiled(c: Compiled) -> std::result::Result<(Vec<u8>, String), String> {
    match c {
        Compiled::Ok { binary, log } => Ok((binary, log)),
        Compiled::Failed { log } => Err(log),
    }
}

/// The first PTX instruction that would break the contract: a floating-point FMA/MAD, a
/// flush-to-zero variant, or an approximate operation.
fn forbidden_instruction(ptx: &str) -> Option<&str> {
    ptx.lines().map(str::trim).find(|line| {
        let Some(opcode) = line.split_whitespace().next() else {
            return false;
        };
        let float = opcode.ends_with(".f32") || opcode.ends_with(".f64");
        let fused_or_flushed =
            opcode.starts_with("fma.") || opcode.starts_with("mad.") || opcode.contains(".ftz");
        (float && fused_or_flushed) || opcode.contains(".approx")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NVRTC, or None after printing why the test skips (a failure when
    /// CONCORD_REQUIRE_NVRTC=1, as in CI).
    fn nvrtc_or_skip() -> Option<Nvrtc> {
        match load() {
            Ok(n) => Some(n),
            Err(e) if std::env::var("CONCORD_REQUIRE_NVRTC").is_ok_and(|v| v == "1") => {
                panic!("cuda nvrtc: {e}")
            }
            Err(e) => {
                println!("SKIP cuda nvrtc: {e}");
                None
            }
        }
    }

    #[test]
    fn arch_names_are_validated() {
        assert_eq!(arch_digits("sm_80"), Some(("80", true)));
        assert_eq!(arch_digits("sm_90a"), Some(("90a", true)));
        assert_eq!(arch_digits("compute_90"), Some(("90", false)));
        assert_eq!(arch_digits("sm_8"), None);
        assert_eq!(arch_digits("gfx90a"), None);
        assert!(matches!(
            check_kernels("x86"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn a_missing_nvrtc_path_is_named() {
        let Err(reason) = Nvrtc::load(Some(std::path::Path::new("/nonexistent/libnvrtc.so.12")))
        else {
            panic!("a missing file must not load");
        };
        assert!(
            reason.contains("/nonexistent/libnvrtc.so.12 does not exist"),
            "{reason}"
        );
    }

    /// An architecture name NVRTC does not know is refused before anything compiles, naming
    /// the ones it does (sm_99 is well-formed but no real GPU; sm_90 is the H100/H200).
    #[test]
    fn unknown_architectures_are_refused_up_front() {
        let Some(nvrtc) = nvrtc_or_skip() else {
            return;
        };
        let Some(supported) = nvrtc.supported_archs() else {
            println!("SKIP cuda nvrtc: too old to list its architectures");
            return;
        };
        assert!(
            supported.contains(&90) && !supported.contains(&99),
            "{supported:?}"
        );
        match check_kernels("sm_99") {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("sm_90"), "{m}"),
            other => panic!("sm_99 must be refused up front, got {other:?}"),
        }
    }

    /// The options keep `a * b + c` two rounded operations, and the PTX check would catch
    /// the FMA NVRTC contracts it into by default.
    #[test]
    fn fmad_false_keeps_products_rounded() {
        let Some(nvrtc) = nvrtc_or_skip() else {
            return;
        };
        let src = "extern \"C\" __global__ void k(float *p) { p[0] = p[1] * p[2] + p[3]; }";
        let ptx = |options: &[String]| match nvrtc.compile(src, "k.cu", options, false) {
            Ok(Compiled::Ok { binary, .. }) => String::from_utf8(binary).unwrap(),
            Ok(Compiled::Failed { log }) => panic!("{log}"),
            Err(e) => panic!("{e}"),
        };
        let contract = ptx(&compile_options("compute_80"));
        assert_eq!(forbidden_instruction(&contract), None, "{contract}");
        assert!(contract.contains("mul.rn.f32"), "{contract}");
        let default = ptx(&["--gpu-architecture=compute_80".to_string()]);
        assert!(forbidden_instruction(&default).is_some(), "{default}");
    }

    #[test]
    fn ptx_entry_parameters_are_read() {
        let ptx = ".visible .entry add(\n\t.param .u64 add_param_0,\n\t.param .u32 add_param_1,\n\t                   .param .f32 add_param_2\n)\n{\n}\n.visible .entry none(\n)\n{\n}\n";
        assert_eq!(
            ptx_entries(ptx),
            vec![
                (
                    "add".to_string(),
                    vec![".u64".into(), ".u32".into(), ".f32".into()]
                ),
                ("none".to_string(), vec![]),
            ]
        );
    }

    #[test]
    fn forbidden_instructions_are_found() {
        let ptx = "\tmad.lo.s32 \t%r1, %r2, %r3, %r4;\n\tmul.rn.f32 \t%f1, %f2, %f3;\n";
        assert_eq!(forbidden_instruction(ptx), None);
        assert!(forbidden_instruction("\tfma.rn.f32 \t%f1, %f2, %f3, %f4;").is_some());
        assert!(forbidden_instruction("\tadd.ftz.f32 \t%f1, %f2, %f3;").is_some());
        assert!(forbidden_instruction("\tex2.approx.f32 \t%f1, %f2;").is_some());
    }
}
