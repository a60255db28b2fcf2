//! Probes of the collective libraries a process could use: MPI, NCCL, RCCL and HCCL
//! (transports in `crate::mpi`, `crate::nccl` and `crate::hccl`) — the probe loads the library,
//! resolves the entry points a transport calls, and reports the version or exactly why the
//! library is unusable. Untested on hardware (no GPU or NPU in CI).

mod result;
pub(crate) mod sys;

/// What one probe found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// `mpi`, `nccl`, `rccl` or `hccl`.
    pub name: &'static str,
    /// `Ok(version and path)` or `Err(why unavailable)`.
    pub outcome: Result<String, String>,
}

/// NCCL's version code as text: `major*10000 + minor*100 + patch` since 2.9, and
/// `major*1000 + minor*100 + patch` before (nccl.h's `NCCL_VERSION`).
pub fn nccl_version_text(code: i32) -> String {
    let (major, minor, patch) = if code >= 10000 {
        (code / 10000, code % 10000 / 100, code % 100)
    } else {
        (code / 1000, code % 1000 / 100, code % 100)
    };
    format!("{major}.{minor}.{patch}")
}

fn nccl_like(name: &'static str, candidates: &[std::path::PathBuf]) -> Probe {
    let outcome = result::nccl_version(candidates)
        .map(|(code, path)| format!("{} ({})", nccl_version_text(code), path.display()));
    Probe { name, outcome }
}

/// Probes MPI, NCCL, RCCL and HCCL, in that order. Never initialises anything.
pub fn probe_all() -> Vec<Probe> {
    vec![
        Probe {
            name: "mpi",
            outcome: crate::mpi::probe(),
        },
        nccl_like("nccl", &sys::nccl_candidates()),
        nccl_like("rccl", &sys::rccl_candidates()),
        Probe {
            name: "hccl",
            outcome: result::hccl_path(&sys::hccl_candidates()).map(|path| {
                format!(
                    "version unknown: HCCL has no version call ({})",
                    path.display()
                )
            }),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn nccl_version_codes_decode_in_both_schemes() {
        // nccl.h: NCCL_VERSION(2, 21, 5) = 2*10000 + 21*100 + 5; before 2.9: 2*1000 + 8*100 + 4.
        assert_eq!(nccl_version_text(22105), "2.21.5");
        assert_eq!(nccl_version_text(2804), "2.8.4");
    }

    #[test]
    fn a_library_without_the_symbols_is_named_with_the_first_missing_one() {
        // The C library opens everywhere this runs and has no NCCL or HCCL entry points.
        let libc = [PathBuf::from("libc.so.6")];
        let err = result::nccl_version(&libc).unwrap_err();
        assert!(
            err.contains("libc.so.6") && err.contains("ncclGetVersion"),
            "{err}"
        );
        let err = result::hccl_path(&libc).unwrap_err();
        assert!(
            err.contains("libc.so.6") && err.contains("HcclGetRootInfo"),
            "{err}"
        );
    }

    #[test]
    fn absent_libraries_are_listed_with_every_path_tried() {
        let candidates = [
            PathBuf::from("/nonexistent/lib64/libhccl.so"),
            PathBuf::from("libhccl-none.so"),
        ];
        let err = result::hccl_path(&candidates).unwrap_err();
        assert!(
            err.contains("/nonexistent/lib64/libhccl.so") && err.contains("libhccl-none.so"),
            "{err}"
        );
    }

    #[test]
    fn rccl_is_searched_under_rocm_too() {
        let candidates = sys::rccl_candidates();
        assert!(candidates.contains(&PathBuf::from("/opt/rocm/lib/librccl.so.1")));
        assert!(sys::hccl_candidates().contains(&PathBuf::from(
            "/usr/local/Ascend/ascend-toolkit/latest/lib64/libhccl.so"
        )));
    }
}
