//! Which device a rank of a parallel job runs on. One process per device is how `mpirun`
//! jobs run (vLLM, SGLang and DeepSpeed launch that way), and the device transports already
//! join on the device of the process's local rank ([`local_rank`](crate::local_rank)); the
//! backend must compute on that same device, or every rank of a node would share device 0.
//! An explicit device variable (`CONCORD_CUDA_DEVICE`, …) still wins.

use concord_core::{Error, Result};

use crate::select::LOCAL_RANK_VARS;

/// Where a rank's device index comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The backend's device variable is set (its text): the backend reads it as before.
    Explicit(String),
    /// The process's local rank on its node, under a launcher with several ranks.
    LocalRank(usize),
    /// The backend's default (device 0): one process, or no local rank known.
    Default,
}

/// The device of a rank, from the backend's device variable (`explicit`, `None` or empty when
/// unset), the process's local rank and whether a launcher started several ranks. Pure: the
/// environment is read by [`assign_rank_device`].
pub fn choose_device(
    explicit: Option<&str>,
    local_rank: Option<usize>,
    launched: bool,
) -> DeviceChoice {
    match (explicit.filter(|v| !v.trim().is_empty()), local_rank) {
        (Some(text), _) => DeviceChoice::Explicit(text.to_string()),
        (None, Some(rank)) if launched => DeviceChoice::LocalRank(rank),
        _ => DeviceChoice::Default,
    }
}

/// Points the backend's device variable `device_var` at this process's local rank when a
/// launcher started several ranks and the variable is unset, so the backend (which reads
/// only that variable) opens the rank's own device; logs the choice. Call before the backend
/// opens and before other threads read the environment.
pub fn assign_rank_device(device_var: &str) -> Result<DeviceChoice> {
    let explicit = match std::env::var(device_var) {
        Ok(text) => Some(text),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Error::invalid(format!("{device_var} is not valid UTF-8")))
        }
    };
    let launched = crate::launched_ranks().filter(|&(_, size)| size > 1);
    let local = LOCAL_RANK_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some())
        .then(crate::local_rank)
        .transpose()?;
    let choice = choose_device(explicit.as_deref(), local, launched.is_some());
    let (rank, size) = launched.unwrap_or((0, 1));
    match &choice {
        DeviceChoice::Explicit(text) => {
            tracing::info!(rank, size, "device {device_var}={text} (set explicitly)")
        }
        DeviceChoice::LocalRank(device) => {
            std::env::set_var(device_var, device.to_string());
            tracing::info!(rank, size, "device {device_var}={device} (the local rank)");
        }
        DeviceChoice::Default if launched.is_some() => tracing::warn!(
            rank,
            size,
            "device 0: neither {device_var} nor a local rank ({}) is set, so every rank of \
             this node uses device 0",
            LOCAL_RANK_VARS.join(", ")
        ),
        DeviceChoice::Default => {}
    }
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launched_rank_takes_its_local_rank_unless_the_device_is_explicit() {
        // Rank 3 of a node under mpirun, nothing set: device 3.
        assert_eq!(
            choose_device(None, Some(3), true),
            DeviceChoice::LocalRank(3)
        );
        assert_eq!(
            choose_device(Some(""), Some(3), true),
            DeviceChoice::LocalRank(3)
        );
        // CONCORD_CUDA_DEVICE=1 wins over local rank 3.
        assert_eq!(
            choose_device(Some("1"), Some(3), true),
            DeviceChoice::Explicit("1".into())
        );
        // One process (no launcher, or a launcher of one rank): the backend's default.
        assert_eq!(choose_device(None, Some(3), false), DeviceChoice::Default);
        // Launched, but no local rank known: the default (with a warning).
        assert_eq!(choose_device(None, None, true), DeviceChoice::Default);
    }
}
