//! Compile checks of the shared kernel sources with hiprtc: every op's program, assembled by
//! `concord-kernels` for [`Target::Hip`], built for one gfx target with the options the
//! numerics contract needs, and its code object checked for every entry point.
//!
//! hiprtc runs inside the calling process, and some versions abort it on a target they do not
//! know (ROCm 5.2 on gfx940/gfx942/gfx1100). [`check_kernels_isolated`] therefore runs the
//! check in a child process, the helper binary `concord-hiprtc-check`, and turns a child killed
//! by a signal into failed entries instead of a dead caller.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use concord_core::{Error, Result};
use concord_kernels::{all_programs, Program, Target};
use concord_ops::{KernelMode, OpKind};

use crate::elf;
use crate::result::{Compiled, Hiprtc};

/// The environment variable naming hiprtc: a file (libhiprtc.so.6, or libamdhip64.so.5 for
/// ROCm 5.x), or a directory holding one.
pub const HIPRTC_PATH_ENV: &str = "CONCORD_HIPRTC_PATH";

/// The environment variable naming the `concord-hiprtc-check` helper binary, when it is not
/// next to the current executable (or one directory up, as for cargo's test binaries).
pub const HIPRTC_CHECK_BIN_ENV: &str = "CONCORD_HIPRTC_CHECK_BIN";

/// The helper binary's file name.
pub const HIPRTC_CHECK_BIN: &str = if cfg!(windows) {
    "concord-hiprtc-check.exe"
} else {
    "concord-hiprtc-check"
};

/// The outcome of compiling one op's program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCheck {
    /// The program's name (`concord_kernels::Program::name`: `matmul`, `matmul.fast`).
    pub op: String,
    /// Whether it compiled and its code object defines every kernel of `kernel_names(op)`.
    pub ok: bool,
    /// On success a summary (and any compiler warnings); on failure the compiler's log, the
    /// reason the output was rejected, or the crash of the compiler.
    pub message: String,
}

/// The hiprtc options that keep the numerics contract (docs/numerics.md) for the gfx target
/// `arch`: no contraction into FMA, no fast-math, subnormals kept (never
/// `-fgpu-flush-denormals-to-zero`). Division and square root are correctly rounded by
/// clang's HIP default (`-fhip-fp32-correctly-rounded-divide-sqrt`).
pub fn compile_options(arch: &str) -> Vec<String> {
    vec![
        format!("--offload-arch={arch}"),
        "-ffp-contract=off".into(),
        "-fno-fast-math".into(),
        "-fno-gpu-flush-denormals-to-zero".into(),
        "-std=c++17".into(),
    ]
}

fn unavailable(reason: String) -> Error {
    Error::Unavailable {
        backend: "rocm".into(),
        reason,
    }
}

/// Opens hiprtc (`CONCORD_HIPRTC_PATH`, else the usual places), or says why it cannot.
pub(crate) fn load() -> Result<Hiprtc> {
    let explicit = std::env::var_os(HIPRTC_PATH_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    Hiprtc::load(explicit.as_deref()).map_err(unavailable)
}

/// hiprtc's location and version (`"5.2 at /usr/lib/…/libamdhip64.so.5"`), or why it cannot
/// be loaded.
pub fn hiprtc_info() -> Result<String> {
    let rtc = load()?;
    let (major, minor) = rtc.version().map_err(|e| unavailable(e.to_string()))?;
    Ok(format!("{major}.{minor} at {}", rtc.path.display()))
}

/// Whether `arch` looks like a gfx target name: `gfx` then hex digits, optionally followed
/// by target features (`gfx90a:sramecc+:xnack-`).
pub(crate) fn valid_arch(arch: &str) -> bool {
    let mut parts = arch.split(':');
    let Some(name) = parts.next().and_then(|n| n.strip_prefix("gfx")) else {
        return false;
    };
    let name_ok = (3..=4).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_hexdigit());
    name_ok
        && parts.all(|f| {
            f.len() > 1
                && (f.ends_with('+') || f.ends_with('-'))
                && f[..f.len() - 1].bytes().all(|b| b.is_ascii_lowercase())
        })
}

pub(crate) fn check_arch(arch: &str) -> Result<()> {
    if valid_arch(arch) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "rocm: {arch:?} is not a gfx target name like gfx90a, gfx908 or gfx1030"
        )))
    }
}

/// The code object (AMDGPU ELF) of `op`'s program for `arch`, with its exact and (for an op
/// that has them) fast kernels. `Err` when hiprtc cannot be
/// loaded ([`Error::Unavailable`]), `arch` is not a target name ([`Error::InvalidArgument`]),
/// or the program fails to compile ([`Error::Backend`] with hiprtc's log). Runs in this
/// process: see the module documentation for targets that crash hiprtc.
pub fn code_object(arch: &str, op: OpKind) -> Result<Vec<u8>> {
    check_arch(arch)?;
    let rtc = load()?;
    compile_checked(&rtc, Program::of(op, KernelMode::Fast), arch)
}

/// [`code_object`] with hiprtc already loaded and `arch` already checked.
pub(crate) fn compile_checked(rtc: &Hiprtc, program: Program, arch: &str) -> Result<Vec<u8>> {
    compile_program(rtc, program, arch)
        .map(|(code, _)| code)
        .map_err(|message| Error::Backend {
            backend: "rocm".into(),
            message,
        })
}

/// Compiles every program (one entry per [`concord_kernels::all_programs`], in that order:
/// each op's exact program, then the fast ones) for `arch`
/// (`gfx90a`, `gfx908`, `gfx1030`, …) in this process, and checks each code object defines
/// every entry point.
///
/// `Err` only when hiprtc cannot be loaded ([`Error::Unavailable`] with the reason) or `arch`
/// is not a target name ([`Error::InvalidArgument`]); a program that fails is an entry with
/// `ok: false` and the compiler's log. A hiprtc that aborts on `arch` aborts this process:
/// prefer [`check_kernels_isolated`] for targets not known to work.
pub fn check_kernels(arch: &str) -> Result<Vec<KernelCheck>> {
    check_kernels_streaming(arch, |_| {})
}

/// [`check_kernels`], handing each entry to `each` as soon as it is known (the helper binary
/// prints it, so a crash later on loses nothing already checked).
pub fn check_kernels_streaming(
    arch: &str,
    mut each: impl FnMut(&KernelCheck),
) -> Result<Vec<KernelCheck>> {
    check_arch(arch)?;
    let rtc = load()?;
    // One program at a time: hiprtc 5.2 is not documented as safe to call from several
    // threads at once.
    Ok(all_programs()
        .into_iter()
        .map(|program| {
            let (ok, message) = match compile_program(&rtc, program, arch) {
                Ok((code, log)) => {
                    let mut m = format!(
                        "{} kernel(s), {arch} code object {} bytes",
                        program.kernel_names().len(),
                        code.len()
                    );
                    if !log.is_empty() {
                        m.push('\n');
                        m.push_str(&log);
                    }
                    (true, m)
                }
                Err(m) => (false, m),
            };
            let check = KernelCheck {
                op: program.name(),
                ok,
                message,
            };
            each(&check);
            check
        })
        .collect())
}

/// Compiles `program` for `arch`: the code object and the compiler's log, or why it failed.
fn compile_program(
    rtc: &Hiprtc,
    program: Program,
    arch: &str,
) -> std::result::Result<(Vec<u8>, String), String> {
    let src = program.source(Target::Hip);
    let file = format!("{}.hip", program.name());
    match rtc
        .compile(&src, &file, &compile_options(arch))
        .map_err(|e| e.to_string())?
    {
        Compiled::Failed { log } => Err(format!("{arch}: hiprtc rejected the program\n{log}")),
        Compiled::Ok { code, log } => {
            if code.is_empty() {
                return Err(format!("{arch}: hiprtc returned an empty code object"));
            }
            for name in program.kernel_names() {
                // Each kernel has a descriptor `name.kd`; its FLOAT_DENORM_MODE_32 must keep
                // f32 subnormals (an FTZ build sets 0).
                match elf::f32_denorm_mode(&code, name) {
                    None => {
                        return Err(format!("{arch}: the code object defines no kernel {name}"))
                    }
                    Some(elf::DENORM_PRESERVE) => {}
                    Some(mode) => {
                        return Err(format!(
                            "{arch}: kernel {name} flushes f32 subnormals \
                             (FLOAT_DENORM_MODE_32 = {mode}, the contract needs 3)"
                        ))
                    }
                }
            }
            Ok((code, log))
        }
    }
}

/// Where the `concord-hiprtc-check` helper is: `$CONCORD_HIPRTC_CHECK_BIN`, else next to the
/// current executable, else one directory up (cargo puts test binaries in `target/*/deps`).
pub fn helper_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(HIPRTC_CHECK_BIN_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| {
        unavailable(format!(
            "cannot find {HIPRTC_CHECK_BIN}: current executable unknown ({e}); set \
             {HIPRTC_CHECK_BIN_ENV}"
        ))
    })?;
    let dirs = exe.ancestors().skip(1).take(2);
    let tried: Vec<PathBuf> = dirs.map(|d| d.join(HIPRTC_CHECK_BIN)).collect();
    tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        unavailable(format!(
            "{HIPRTC_CHECK_BIN} not found (looked at {}); build it with `cargo build -p \
             concord-backend-rocm` or set {HIPRTC_CHECK_BIN_ENV}",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// [`check_kernels`] in a child process (the helper found by [`helper_binary`]): a hiprtc
/// that crashes on `arch` yields failed entries ("hiprtc crashed compiling for `<arch>` (signal
/// N)") for every op not yet checked, and this process lives on.
pub fn check_kernels_isolated(arch: &str) -> Result<Vec<KernelCheck>> {
    check_kernels_isolated_with(&helper_binary()?, arch)
}

/// [`check_kernels_isolated`] with the helper binary given.
pub fn check_kernels_isolated_with(helper: &Path, arch: &str) -> Result<Vec<KernelCheck>> {
    check_arch(arch)?;
    let output = Command::new(helper)
        .arg(arch)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Backend {
            backend: "rocm".into(),
            message: format!("cannot run {}: {e}", helper.display()),
        })?;
    let mut checks: Vec<KernelCheck> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // A line cut short by a crash is not JSON and is dropped.
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(reason) = value
            .get(helper_protocol::UNAVAILABLE)
            .and_then(|v| v.as_str())
        {
            return Err(unavailable(reason.to_string()));
        }
        if let Some(message) = value.get(helper_protocol::INVALID).and_then(|v| v.as_str()) {
            return Err(Error::invalid(message.to_string()));
        }
        if let Some(check) = helper_protocol::parse(&value) {
            checks.push(check);
        }
    }
    let crash = crash_signal(&output.status)
        .map(|signal| format!("hiprtc crashed compiling for {arch} (signal {signal})"))
        .or_else(|| {
            (!output.status.success())
                .then(|| format!("the hiprtc check for {arch} exited with {}", output.status))
        });
    if let Some(mut reason) = crash {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        if !tail.is_empty() {
            reason.push('\n');
            reason.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        for program in all_programs() {
            if !checks.iter().any(|c| c.op == program.name()) {
                checks.push(KernelCheck {
                    op: program.name(),
                    ok: false,
                    message: reason.clone(),
                });
            }
        }
    }
    // A program the helper never reported (a stale helper built before the program existed,
    // or one that stopped early without crashing) is a failure, never a silent skip.
    for program in all_programs() {
        if !checks.iter().any(|c| c.op == program.name()) {
            checks.push(KernelCheck {
                op: program.name(),
                ok: false,
                message: format!(
                    "{} did not report this program (rebuild it with this version of concord)",
                    helper.display()
                ),
            });
        }
    }
    // In all_programs order, whatever order the child printed in.
    let order: Vec<String> = all_programs().into_iter().map(Program::name).collect();
    checks.sort_by_key(|c| order.iter().position(|name| *name == c.op));
    Ok(checks)
}

#[cfg(unix)]
fn crash_signal(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn crash_signal(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// The helper binary's output: one JSON object per line, `{"op", "ok", "message"}` per op,
/// or a single `{"unavailable": reason}` / `{"invalid": message}`.
pub mod helper_protocol {
    use super::*;

    /// Key of the line saying hiprtc cannot be loaded.
    pub const UNAVAILABLE: &str = "unavailable";
    /// Key of the line saying the target name is malformed.
    pub const INVALID: &str = "invalid";

    /// The line for one entry.
    pub fn line(check: &KernelCheck) -> String {
        serde_json::json!({ "op": check.op, "ok": check.ok, "message": check.message }).to_string()
    }

    /// The entry a line holds, if it is one.
    pub fn parse(value: &serde_json::Value) -> Option<KernelCheck> {
        Some(KernelCheck {
            op: value.get("op")?.as_str()?.to_string(),
            ok: value.get("ok")?.as_bool()?,
            message: value.get("message")?.as_str()?.to_string(),
        })
    }

    /// Runs the check for `arch` and prints its lines to `out`, flushing each; the exit code
    /// the helper should return (0 checked, 2 invalid target, 3 hiprtc unavailable).
    pub fn run(arch: &str, out: &mut impl Write) -> i32 {
        let result = check_kernels_streaming(arch, |check| {
            // A closed stdout only loses the report, which the parent then lacks.
            let _ = writeln!(out, "{}", line(check)).and_then(|()| out.flush());
        });
        let (key, message, code) = match result {
            Ok(_) => return 0,
            Err(Error::Unavailable { reason, .. }) => (UNAVAILABLE, reason, 3),
            Err(e) => (INVALID, e.to_string(), 2),
        };
        let _ = writeln!(out, "{}", serde_json::json!({ key: message }));
        code
    }
}
