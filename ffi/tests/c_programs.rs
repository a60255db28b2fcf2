//! Compiles `examples/c/generate.c` and `ffi/tests/misuse.c` with gcc against the libconcord
//! that cargo built for this test run, runs both from the repository root and expects exit 0.
//! Without gcc it prints `SKIP ffi c programs: gcc not found` (a failure when
//! `CONCORD_REQUIRE_C=1`). `ci/ffi.sh` does the same in release mode, plus valgrind.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding `libconcord.so`: this test executable lives in
/// `<target>/<profile>/deps/`, cargo puts the library in `<target>/<profile>/`.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join(shared_library_name()).is_file())
        .unwrap_or_else(|| {
            panic!(
                "{} not found above {}: is concord-ffi's lib crate-type missing cdylib?",
                shared_library_name(),
                exe.display()
            )
        })
        .to_path_buf()
}

fn shared_library_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "libconcord.dylib"
    } else {
        "libconcord.so"
    }
}

fn gcc_available() -> bool {
    Command::new("gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Where the loader finds the library under its SONAME: cargo writes only `libconcord.so`,
/// but a program linked with `-lconcord` asks for `libconcord.so.MAJOR` (ffi/build.rs), so
/// `out_dir` gets that name as a link to it (as ffi/install.sh lays out an installed library).
fn soname_link(lib: &Path, out_dir: &Path) {
    if cfg!(unix) && !cfg!(target_os = "macos") {
        let link = out_dir.join(concat!("libconcord.so.", env!("CARGO_PKG_VERSION_MAJOR")));
        let _ = std::fs::remove_file(&link);
        #[cfg(unix)]
        std::os::unix::fs::symlink(lib.join(shared_library_name()), &link)
            .expect("link the library under its SONAME");
    }
}

fn compile_and_run(repo: &Path, lib: &Path, source: &str, name: &str) {
    let out_dir = lib.join("ffi-c-test");
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    soname_link(lib, &out_dir);
    let exe = out_dir.join(name);
    let compile = Command::new("gcc")
        .current_dir(repo)
        .args(["-std=c11", "-Wall", "-Werror", "-Iffi/include", source])
        .arg(format!("-L{}", lib.display()))
        .arg("-lconcord")
        .arg(format!("-Wl,-rpath,{}", out_dir.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run gcc");
    assert!(
        compile.status.success(),
        "gcc {source} failed:\n{}",
        String::from_utf8_lossy(&compile.stderr)
    );
    let run = Command::new(&exe)
        .current_dir(repo)
        .output()
        .expect("run the compiled program");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("== {source}\n{stdout}{stderr}");
    assert!(
        run.status.success(),
        "{source} exited with {}:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        run.status
    );
}

#[test]
fn c_programs_build_and_pass() {
    if !gcc_available() {
        println!("SKIP ffi c programs: gcc not found");
        if std::env::var_os("CONCORD_REQUIRE_C").as_deref() == Some(OsStr::new("1")) {
            panic!("CONCORD_REQUIRE_C=1 but gcc was not found");
        }
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ffi/ sits in the repository root");
    let lib = library_dir();
    compile_and_run(repo, &lib, "examples/c/generate.c", "generate");
    compile_and_run(repo, &lib, "ffi/tests/misuse.c", "misuse");
}
