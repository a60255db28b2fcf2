//! `--tensor-parallel` / `--expert-parallel` on the command line: a layout the launch does not
//! match is a clear error naming the `mpirun -np` to use, every rank's error carries its rank,
//! and the commands that run one process refuse a layout instead of ignoring it.

use std::process::{Command, Output};

/// Runs `concord` with `env` added (and the launchers' variables of the test's own
/// environment removed, so a test run under mpirun checks the same thing).
fn concord(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concord"));
    for var in [
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "PMI_RANK",
        "PMI_SIZE",
        "PMIX_RANK",
        "PMIX_SIZE",
    ] {
        command.env_remove(var);
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run concord")
}

fn failure(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = concord(args, env);
    assert!(!out.status.success(), "concord {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_layout_larger_than_the_launch_names_the_mpirun_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("logits.safetensors");
    let out = out.to_str().unwrap();
    let stderr = failure(
        &[
            "logits",
            "--ids",
            "1,2,3",
            "--out",
            out,
            "--tensor-parallel",
            "2",
            "--expert-parallel",
            "2",
        ],
        &[],
    );
    assert!(
        stderr.contains("needs 4 ranks") && stderr.contains("mpirun -np 4"),
        "{stderr}"
    );
    assert!(!dir.path().join("logits.safetensors").exists());
    let stderr = failure(
        &[
            "logits",
            "--ids",
            "1",
            "--out",
            out,
            "--expert-parallel",
            "0",
        ],
        &[],
    );
    assert!(stderr.contains("at least 1"), "{stderr}");
}

#[test]
fn every_rank_prefixes_its_errors_with_its_rank() {
    let stderr = failure(
        &["generate", "--ids", "1,2", "--expert-parallel", "2"],
        &[("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2")],
    );
    assert!(stderr.starts_with("rank 1 of 2: error:"), "{stderr}");
}

#[test]
fn serve_and_chat_refuse_a_parallel_layout() {
    for command in ["serve", "chat"] {
        let stderr = failure(&[command, "--tensor-parallel", "2"], &[]);
        assert!(stderr.contains("not supported yet"), "{command}: {stderr}");
    }
}

#[test]
fn one_by_one_is_the_single_process_run() {
    let args = [
        "generate",
        "--ids",
        "1,2,3",
        "--max-new-tokens",
        "4",
        "--emit",
        "ids",
    ];
    let plain = concord(&args, &[]);
    let explicit = concord(
        &[
            &args[..],
            &["--tensor-parallel", "1", "--expert-parallel", "1"],
        ]
        .concat(),
        &[],
    );
    assert!(plain.status.success() && explicit.status.success());
    assert_eq!(plain.stdout, explicit.stdout);
}
