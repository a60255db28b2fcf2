//! The MPI transport for real: this test binary is started by `mpirun` as 2 ranks, each of
//! which runs the collectives' self-check on `MPI_COMM_WORLD`. Without `mpirun` on the PATH the
//! test prints SKIP with the reason (and fails under `CI=true`, where ci/mpi.sh installs Open
//! MPI).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use concord_comm::{check_collectives, from_environment};

/// Set in the ranks' environment: the test below then acts as the rank program.
const RANK_PROGRAM_ENV: &str = "CONCORD_COMM_TEST_RANK_PROGRAM";

/// One rank's part: does nothing unless started by `collectives_pass_on_every_rank_of_mpirun`.
#[test]
fn rank_program() {
    if std::env::var_os(RANK_PROGRAM_ENV).is_none() {
        return;
    }
    let comm = from_environment(Duration::from_secs(60)).expect("the MPI communicator opens");
    check_collectives(comm.as_ref()).unwrap_or_else(|e| panic!("rank {}: {e}", comm.rank()));
    println!("collectives OK on rank {} of {}", comm.rank(), comm.size());
}

/// Started with launcher variables that MPI (a singleton here) contradicts.
#[test]
fn mismatch_program() {
    if std::env::var_os(RANK_PROGRAM_ENV).is_none() {
        return;
    }
    let err = match from_environment(Duration::from_secs(10)) {
        Ok(comm) => panic!("opened as rank {} of {}", comm.rank(), comm.size()),
        Err(e) => e.to_string(),
    };
    println!("from_environment: {err}");
}

#[test]
fn a_launcher_that_disagrees_with_mpi_is_an_error() {
    if let Some(why) = mpirun_missing() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs MPI: {why}"
        );
        println!("SKIP a_launcher_that_disagrees_with_mpi_is_an_error: {why}");
        return;
    }
    // PMI_* say rank 1 of 3; MPI_Init without a launcher makes a job of one rank.
    let out = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", "mismatch_program", "--nocapture"])
        .env(RANK_PROGRAM_ENV, "1")
        .env("PMI_RANK", "1")
        .env("PMI_SIZE", "3")
        .output()
        .expect("the test binary starts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("the launcher says rank 1 of 3") && text.contains("says rank 0 of 1"),
        "{text}"
    );
}

fn mpirun_missing() -> Option<String> {
    match Command::new("mpirun").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`mpirun --version` exited with {}", out.status)),
        Err(e) => Some(format!(
            "mpirun not found ({e}); ci/mpi.sh installs Open MPI"
        )),
    }
}

#[test]
fn collectives_pass_on_every_rank_of_mpirun() {
    if let Some(why) = mpirun_missing() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs mpirun: {why}"
        );
        println!("SKIP collectives_pass_on_every_rank_of_mpirun: {why}");
        return;
    }
    let ranks = 2;
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np"])
        .arg(ranks.to_string())
        .arg(exe)
        .args([
            "--exact",
            "rank_program",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(RANK_PROGRAM_ENV, "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun starts");
    // The outer guard: a hung job is killed and reported, never waited on forever.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("mpirun's status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mpirun -np {ranks} still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "mpirun: {status}\n{out}\n{err}");
    for rank in 0..ranks {
        let line = format!("collectives OK on rank {rank} of {ranks}");
        assert!(out.contains(&line), "no `{line}`:\n{out}\n{err}");
    }
}

/// Which backend `vendor_missing_program` opens the communicator of.
const BACKEND_ENV: &str = "CONCORD_COMM_TEST_BACKEND";

/// One rank's part of `a_missing_vendor_library_is_named_on_every_rank`: the communicator of
/// the backend `$CONCORD_COMM_TEST_BACKEND` names, on a machine without its vendor library.
#[test]
fn vendor_missing_program() {
    if std::env::var_os(RANK_PROGRAM_ENV).is_none() {
        return;
    }
    let backend = std::env::var(BACKEND_ENV).expect("the backend to open");
    match concord_comm::for_backend(&backend, Duration::from_secs(10)) {
        Ok(comm) => println!("opened {}", comm.describe()),
        Err(e) => println!("for_backend: {e}"),
    }
}

#[test]
fn a_missing_vendor_library_is_named_on_every_rank() {
    if let Some(why) = mpirun_missing() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs mpirun: {why}"
        );
        println!("SKIP a_missing_vendor_library_is_named_on_every_rank: {why}");
        return;
    }
    // (backend, its communicator, a path its search must name)
    let cases = [
        ("cuda", "nccl", "libnccl.so.2"),
        (
            "ascend",
            "hccl",
            "/usr/local/Ascend/ascend-toolkit/latest/lib64/libhccl.so",
        ),
    ];
    for (backend, library, path) in cases {
        let found = concord_comm::vendor::probe_all()
            .into_iter()
            .any(|p| p.name == library && p.outcome.is_ok());
        if found {
            println!("SKIP {library} missing: this machine has it");
            continue;
        }
        check_missing_library(backend, library, path);
    }
}

/// Runs `vendor_missing_program` for `backend` on 2 ranks; each must name `library`, `path`
/// and the way back to MPI.
fn check_missing_library(backend: &str, library: &str, path: &str) {
    let ranks = 2;
    let mut child = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np"])
        .arg(ranks.to_string())
        .arg(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", "vendor_missing_program", "--nocapture"])
        .env(RANK_PROGRAM_ENV, "1")
        .env(BACKEND_ENV, backend)
        .env_remove(concord_comm::COMM_ENV)
        .env_remove("ASCEND_HOME_PATH")
        .env_remove("ASCEND_TOOLKIT_HOME")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("mpirun's status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mpirun -np {ranks} still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "mpirun: {status}\n{out}");
    // The ranks' outputs may interleave within a line: split on the marker instead.
    let answers: Vec<&str> = out.split("for_backend: ").skip(1).collect();
    assert_eq!(answers.len(), ranks, "{backend}: {out}");
    for answer in answers {
        assert!(
            answer.starts_with(&format!("backend {library} unavailable"))
                && answer.contains(path)
                && answer.contains("CONCORD_COMM=mpi"),
            "{backend}: {answer}"
        );
    }
}
