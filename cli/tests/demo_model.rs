//! The bundled demo model is found at run time: beside a copied binary, or through
//! `CONCORD_DEMO_MODEL` — never only at the path of the checkout the binary was built in.

use std::path::Path;
use std::process::Command;

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_copied_binary_finds_the_demo_model_beside_it() {
    let root = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/demo");
    copy_dir(&demo, &root.path().join("models/demo"));
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    let exe = root.path().join("bin/concord");
    std::fs::copy(env!("CARGO_BIN_EXE_concord"), &exe).unwrap();
    let out = Command::new(&exe)
        .arg("inspect")
        .env_remove("CONCORD_DEMO_MODEL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let want = root.path().join("models/demo").canonicalize().unwrap();
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.ends_with(&*want.to_string_lossy())),
        "the copy beside the binary, not the checkout: {text}"
    );
}

#[test]
fn concord_demo_model_names_the_directory() {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .arg("inspect")
        .env("CONCORD_DEMO_MODEL", "/nonexistent/demo")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/demo"), "{err}");
}
