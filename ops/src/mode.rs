//! The two kernel modes of docs/numerics.md §1.
use std::fmt;
use std::str::FromStr;

use concord_core::Error;
use serde::Serialize;

/// Which kernels a backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelMode {
    /// The recipes of docs/numerics.md only: bit-identical to the CPU reference everywhere.
    #[default]
    Exact,
    /// Tensor cores and tiled kernels on the hot paths (matmuls, routed experts): checked
    /// against `Exact` with per-precision tolerances, still deterministic and batch-invariant.
    Fast,
}

impl KernelMode {
    /// `exact` or `fast`.
    pub fn name(self) -> &'static str {
        match self {
            KernelMode::Exact => "exact",
            KernelMode::Fast => "fast",
        }
    }
}

impl fmt::Display for KernelMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KernelMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "exact" => Ok(KernelMode::Exact),
            "fast" => Ok(KernelMode::Fast),
            other => Err(Error::invalid(format!(
                "unknown kernel mode '{other}' (known: exact, fast)"
            ))),
        }
    }
}
