//! `--experts-on host`: the routed experts of every MoE layer live in host memory and run on
//! the CPU backend, while attention, dense layers, shared experts, router and head stay on the
//! model's (device) backend — the layout of KTransformers and llama.cpp's `--n-cpu-moe`, for a
//! model whose experts do not fit the accelerator.
//!
//! Per MoE layer: the router runs on the device; the layer input x [T,H], the chosen expert ids
//! and their weights are read back; the shared experts are enqueued on the device; `MoeExperts`
//! runs on the CPU backend meanwhile; its output is written to the device and added to the
//! shared experts' output there. Every backend implements the same op contract, so in exact
//! mode the result is bit-identical to running the whole layer on either backend.

use std::sync::Arc;

use concord_core::{Error, Result};
use concord_ops::{Backend, TensorArg};

use super::weights::{ExpertStacks, MoeWeights};
use super::Model;
use crate::exec::{DeviceTensor, Executor};

/// Where the routed experts' weights live and run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExpertPlacement {
    /// On the model's backend, with everything else.
    #[default]
    Device,
    /// In host memory, run by the CPU backend (the same as `Device` when the model's backend
    /// is already the CPU).
    Host,
}

impl ExpertPlacement {
    /// `device` or `host`.
    pub fn name(self) -> &'static str {
        match self {
            ExpertPlacement::Device => "device",
            ExpertPlacement::Host => "host",
        }
    }
}

impl std::str::FromStr for ExpertPlacement {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "device" => Ok(ExpertPlacement::Device),
            "host" | "cpu" => Ok(ExpertPlacement::Host),
            other => Err(Error::invalid(format!(
                "unknown expert placement '{other}' (expected device or host)"
            ))),
        }
    }
}

impl std::fmt::Display for ExpertPlacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The executor the routed experts are loaded into and run by, when it is not the model's
/// own: a CPU backend for `Host` on any other backend; `None` otherwise (on the CPU backend
/// `Host` changes nothing — no second copy, no transfers).
pub(crate) fn host_executor(
    backend: &Arc<dyn Backend>,
    placement: ExpertPlacement,
) -> Result<Option<Executor>> {
    match placement {
        ExpertPlacement::Host if backend.info().name != "cpu" => {
            Ok(Some(Executor::new(concord_backend_cpu::probe()?)))
        }
        _ => Ok(None),
    }
}

/// Host bytes of one layer's routed expert stacks (weights and FP8 scales).
pub(crate) fn stack_bytes(s: &ExpertStacks) -> usize {
    let scales = s
        .scales
        .as_ref()
        .map_or(0, |(t, _)| t.iter().map(|t| t.buffer.len()).sum());
    s.gate.buffer.len() + s.up.buffer.len() + s.down.buffer.len() + scales
}

/// Copies `arg`'s bytes from `exec`'s backend to host memory (after the work enqueued there).
fn download(exec: &Executor, arg: &TensorArg, what: &str) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; arg.desc.bytes()];
    exec.backend()
        .read(arg.buffer, arg.offset, &mut bytes)
        .map_err(|e| Error::model(format!("experts on host: reading {what} back: {e}")))?;
    Ok(bytes)
}

impl Model {
    /// The rest of a MoE layer once the router ran on the device: `ids` [T,K] and `weights`
    /// [T,K] are its outputs for layer input `x`; the routed experts run on `host`.
    pub(crate) fn moe_with_host_experts(
        &self,
        host: &Executor,
        x: &TensorArg,
        ids: &DeviceTensor,
        weights: &DeviceTensor,
        w: &MoeWeights,
    ) -> Result<DeviceTensor> {
        // The first read waits for the router; the three transfers carry the bytes unchanged.
        let x_host = host.upload(x.desc.clone(), &download(&self.exec, x, "x")?)?;
        let ids_host = host.upload(ids.desc.clone(), &download(&self.exec, &ids.arg(), "ids")?)?;
        let weights_host = host.upload(
            weights.desc.clone(),
            &download(&self.exec, &weights.arg(), "expert weights")?,
        )?;
        // Device launches are asynchronous (an in-order queue): the shared experts are
        // enqueued before the host starts, so a device that runs its queue meanwhile overlaps
        // them with the routed experts below.
        let shared = match &w.shared {
            Some(shared) => Some(self.mlp(x, shared)?),
            None => None,
        };
        let routed_host = self.routed_experts(
            host,
            &x_host.arg(),
            &ids_host.arg(),
            &weights_host.arg(),
            &w.experts,
        )?;
        let routed = self.exec.upload(
            routed_host.desc.clone(),
            &download(host, &routed_host.arg(), "routed experts' output")?,
        )?;
        match shared {
            Some(sh) => self.add_shared(&routed, &sh),
            None => Ok(routed),
        }
    }
}
