//! `concord backends` ends with a "communicators" section: one line for each of mpi, nccl,
//! rccl and hccl, available with a version or unavailable with the reason.

use std::process::Command;

#[test]
fn backends_lists_every_communicator_with_a_verdict() {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .arg("backends")
        .output()
        .expect("run concord");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let section = text
        .split_once("communicators:\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no communicators section:\n{text}"));
    let lines: Vec<&str> = section.lines().collect();
    assert_eq!(lines.len(), 4, "{section}");
    for (line, name) in lines.iter().zip(["mpi", "nccl", "rccl", "hccl"]) {
        let rest = line
            .strip_prefix(name)
            .unwrap_or_else(|| panic!("`{line}` is not about {name}"))
            .trim_start();
        let verdict_given = rest.starts_with("available ") || rest.starts_with("unavailable ");
        assert!(verdict_given, "{line}");
        // Unavailable says why: the paths tried or what the library lacks.
        if rest.starts_with("unavailable") {
            assert!(rest.contains("tried") || rest.contains("lacks"), "{line}");
        }
    }
    // CI installs Open MPI (ci/mpi.sh), so there the MPI line must say available.
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(lines[0].starts_with("mpi      available"), "{}", lines[0]);
    }
}
