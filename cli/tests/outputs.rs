//! What `concord` leaves on disk: every output is written whole or not at all, through a
//! uniquely named staging path that is removed on error and on SIGTERM, and nothing the run did
//! not create is touched. Each test lists its directory before and after.

use std::collections::BTreeSet;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use concord_loader::{Checkpoint, ModelConfig};

fn concord() -> Command {
    Command::new(env!("CARGO_BIN_EXE_concord"))
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    concord()
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("concord runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/demo")
        .canonicalize()
        .unwrap()
}

/// Every path under `dir` (hidden ones included), relative, with a marker for its kind.
fn listing(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let ft = entry.file_type().unwrap();
            let kind = if ft.is_symlink() {
                "link"
            } else if ft.is_dir() {
                "dir"
            } else if ft.is_fifo() {
                "fifo"
            } else {
                "file"
            };
            out.insert(format!("{rel} ({kind})"));
            if ft.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// Opens `dir` with the loader and checks the tensor inventory its config implies; returns
/// the dtype of one projection weight.
fn loads(dir: &Path) -> String {
    let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
    let ckpt = Checkpoint::open(dir).unwrap();
    concord_loader::validate_checkpoint(&cfg, &ckpt, false).unwrap();
    ckpt.dtype_name("model.layers.0.self_attn.o_proj.weight")
        .unwrap()
        .to_string()
}

/// The listing of `dir` with the new directories `added` (and what is in them) taken out.
fn without_all(dir: &Path, added: &[&str]) -> BTreeSet<String> {
    listing(dir)
        .into_iter()
        .filter(|p| {
            !added
                .iter()
                .any(|a| p.starts_with(&format!("{a}/")) || *p == format!("{a} (dir)"))
        })
        .collect()
}

fn without(dir: &Path, added: &str) -> BTreeSet<String> {
    without_all(dir, &[added])
}

#[test]
fn convert_leaves_an_unrelated_partial_directory_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("x");
    std::fs::create_dir_all(x.join("DS.partial")).unwrap();
    std::fs::write(x.join("DS.partial/keep.txt"), "mine").unwrap();
    let before = listing(tmp.path());
    let demo = demo();
    let o = run_in(
        tmp.path(),
        &["convert", "--to", "fp8", demo.to_str().unwrap(), "x/DS.1"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(x.join("DS.partial/keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(before, without(tmp.path(), "x/DS.1"));
    assert_eq!(loads(&x.join("DS.1")), "F8_E4M3");
}

#[test]
fn convert_of_an_input_named_partial_keeps_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&demo(), &tmp.path().join("m.partial"));
    let before = listing(tmp.path());
    let o = run_in(
        tmp.path(),
        &["convert", "--to", "fp8", "m.partial", "m"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(before, without(tmp.path(), "m"));
    assert_eq!(loads(&tmp.path().join("m.partial")), "BF16");
    assert_eq!(loads(&tmp.path().join("m")), "F8_E4M3");
}

#[test]
fn convert_refuses_an_output_that_is_inside_is_or_contains_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&demo(), &tmp.path().join("m"));
    let before = listing(tmp.path());
    for (out, why) in [
        ("m/inner", "inside the input"),
        ("m", "is the input"),
        ("m/.", "is the input"),
        (".", "contains the input"),
    ] {
        let o = run_in(tmp.path(), &["convert", "--to", "bf16", "m", out], &[]);
        assert_eq!(o.status.code(), Some(1), "{out}");
        let err = stderr(&o);
        assert!(err.contains(why) && err.contains(out), "{out}: {err}");
        assert!(!err.contains("panicked"));
        assert_eq!(before, listing(tmp.path()), "{out}");
    }
}

#[test]
fn convert_refuses_a_symlink_target_and_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", tmp.path().join("link")).unwrap();
    let before = listing(tmp.path());
    let demo = demo();
    let o = run_in(
        tmp.path(),
        &["convert", "--to", "bf16", demo.to_str().unwrap(), "link"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("link is a symbolic link"), "{err}");
    assert_eq!(before, listing(tmp.path()));
}

#[test]
fn convert_rejects_a_zero_weight_block_size_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad");
    copy_dir(&demo(), &bad);
    edit_config(&bad, |c| {
        c["quantization_config"] =
            serde_json::json!({ "quant_method": "fp8", "weight_block_size": [0, 0] });
    });
    let before = listing(tmp.path());
    let o = run_in(tmp.path(), &["convert", "--to", "fp8", "bad", "out"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("weight_block_size") && err.contains("bad/config.json"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(before, listing(tmp.path()));
}

#[test]
fn convert_does_not_publish_a_checkpoint_that_cannot_load() {
    let tmp = tempfile::tempdir().unwrap();
    let short = tmp.path().join("short");
    copy_dir(&demo(), &short);
    // The config promises a sixth layer the weights do not have (layers 0-3 are the main
    // model's, 4 its MTP module, read as a main layer under this config).
    edit_config(&short, |c| c["num_hidden_layers"] = 6.into());
    let before = listing(tmp.path());
    let o = run_in(
        tmp.path(),
        &["convert", "--to", "bf16", "short", "out"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("out was not written")
            && err.contains("missing tensor `model.layers.5.input_layernorm.weight`"),
        "{err}"
    );
    assert_eq!(before, listing(tmp.path()));
}

#[test]
fn two_converts_into_sibling_outputs_at_once_both_load() {
    let tmp = tempfile::tempdir().unwrap();
    let before = listing(tmp.path());
    let demo = demo();
    let spawn = |to: &str, out: &str| {
        concord()
            .current_dir(tmp.path())
            .args(["convert", "--to", to, demo.to_str().unwrap(), out])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("fp8", "DS.1"), spawn("bf16", "DS.2"));
    for child in [a, b] {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(loads(&tmp.path().join("DS.1")), "F8_E4M3");
    assert_eq!(loads(&tmp.path().join("DS.2")), "BF16");
    assert_eq!(before, without_all(tmp.path(), &["DS.1", "DS.2"]));
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

fn logits_to(dir: &Path, out: &str, env: &[(&str, &str)]) -> Output {
    let demo = demo();
    run_in(
        dir,
        &[
            "logits",
            "--model",
            demo.to_str().unwrap(),
            "--ids",
            "0,5,17",
            "--out",
            out,
        ],
        env,
    )
}

#[test]
fn logits_refuses_a_fifo_target_and_leaves_it_a_fifo() {
    let tmp = tempfile::tempdir().unwrap();
    mkfifo(&tmp.path().join("pipe"));
    std::os::unix::fs::symlink("pipe", tmp.path().join("to-pipe")).unwrap();
    std::fs::create_dir(tmp.path().join("dir")).unwrap();
    let before = listing(tmp.path());
    for (out, what) in [
        ("pipe", "is a FIFO"),
        ("to-pipe", "symbolic link to a FIFO"),
        ("dir", "is a directory"),
    ] {
        let o = logits_to(tmp.path(), out, &[]);
        assert_eq!(o.status.code(), Some(1), "{out}");
        let err = stderr(&o);
        assert!(err.contains(out) && err.contains(what), "{out}: {err}");
        assert_eq!(before, listing(tmp.path()), "{out}");
    }
    let ft = std::fs::symlink_metadata(tmp.path().join("pipe"))
        .unwrap()
        .file_type();
    assert!(ft.is_fifo());
}

#[test]
fn logits_replaces_a_regular_file_and_writes_through_a_link_to_one() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("old.safetensors"), "old").unwrap();
    std::os::unix::fs::symlink("old.safetensors", tmp.path().join("link.safetensors")).unwrap();
    let before = listing(tmp.path());
    for out in ["old.safetensors", "link.safetensors"] {
        std::fs::write(tmp.path().join("old.safetensors"), "old").unwrap();
        let o = logits_to(tmp.path(), out, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(before, listing(tmp.path()));
        let bytes = std::fs::read(tmp.path().join("old.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("logits").unwrap().shape(), &[3, 512]);
    }
}

#[test]
fn a_failed_logits_write_leaves_nothing_and_keeps_the_old_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep.safetensors"), "old").unwrap();
    let before = listing(tmp.path());
    for out in ["new.safetensors", "keep.safetensors"] {
        let o = logits_to(tmp.path(), out, &[("CONCORD_TEST_FAIL_AT", "logits-write")]);
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(err.contains(out), "{err}");
        assert_eq!(before, listing(tmp.path()));
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("keep.safetensors")).unwrap(),
            "old"
        );
    }
}

#[test]
fn sigterm_mid_write_removes_the_staging_file_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let before = listing(tmp.path());
    let demo = demo();
    let child = concord()
        .current_dir(tmp.path())
        .args(["logits", "--model", demo.to_str().unwrap(), "--ids", "0,5"])
        .args(["--out", "l.safetensors"])
        .env("CONCORD_TEST_STALL_AT", "logits-write")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let staging_prefix = format!(".l.safetensors.concord-tmp-{}-", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !listing(tmp.path())
        .iter()
        .any(|p| p.starts_with(&staging_prefix))
    {
        assert!(Instant::now() < deadline, "no staging file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_eq!(before, listing(tmp.path()));
}

/// Runs `args` with standard output a pipe whose reader is closed before the command writes.
fn with_closed_stdout(args: &[&str]) -> Output {
    let mut child = concord()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_pipe_ends_every_printing_command_quietly() {
    let demo = demo();
    let model = demo.to_str().unwrap();
    for args in [
        vec!["inspect", "--model", model],
        vec!["backends"],
        vec!["tokenize", "--model", model, "--text", "Hello there"],
        vec![
            "generate", "--model", model, "--ids", "0,5", "--emit", "ids",
        ],
        vec!["generate", "--model", model, "--prompt", "Once upon a time"],
    ] {
        let o = with_closed_stdout(&args);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    }
}
