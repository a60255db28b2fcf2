//! Fits or not — and when not, by how much and what would make it fit: more devices,
//! `--experts-on host`, fp8, a shorter context or a smaller batch, more host RAM.

use crate::config::ModelConfig;

use super::layout::ExpertsOn;
use super::report::fmt_bytes;
use super::{plan, Devices, MemoryPlan, PlanRequest, PrecisionChoice, WeightStorage};

/// The verdict lines for `p`.
pub fn verdict(cfg: &ModelConfig, p: &MemoryPlan) -> Vec<String> {
    let devices = p.request.devices;
    let mut lines = Vec::new();
    match (p.device_shortfall(), p.host_shortfall()) {
        (None, None) => {
            let free = devices.bytes_each - p.device.total();
            lines.push(format!(
                "verdict: fits — each of the {} device(s) keeps {} free ({:.1} %)",
                devices.count,
                fmt_bytes(free),
                100.0 * free as f64 / devices.bytes_each as f64
            ));
            if p.host.total() > 0 && p.request.host_memory.is_none() {
                lines.push(format!(
                    "         the host needs {} of RAM (give --host-memory to check it)",
                    fmt_bytes(p.host.total())
                ));
            }
            return lines;
        }
        (device, host) => {
            lines.push("verdict: does not fit".to_string());
            if let Some(short) = device {
                lines.push(format!(
                    "  each device needs {} but has {}: {} short",
                    fmt_bytes(p.device.total()),
                    fmt_bytes(devices.bytes_each),
                    fmt_bytes(short)
                ));
                lines.extend(device_remedies(cfg, p, short));
            }
            if let Some(short) = host {
                lines.push(format!(
                    "  the host needs {} of RAM but --host-memory gives {}: {} short — more host RAM, or keep the experts on the devices",
                    fmt_bytes(p.host.total()),
                    fmt_bytes(p.request.host_memory.unwrap_or(0)),
                    fmt_bytes(short)
                ));
            }
        }
    }
    lines
}

/// What would make the devices hold the plan, each checked by planning it.
fn device_remedies(cfg: &ModelConfig, p: &MemoryPlan, short: u64) -> Vec<String> {
    let req = p.request;
    let mut out = Vec::new();
    let fits = |r: &PlanRequest| plan(cfg, r).ok().filter(|q| q.device_shortfall().is_none());

    if p.layout.experts_on == ExpertsOn::Device && cfg.n_routed_experts > 0 {
        let tp = p.layout.tensor_parallel;
        let more = (req.devices.count + 1..=tp * cfg.n_routed_experts)
            .filter(|n| n % tp == 0 && cfg.n_routed_experts % (n / tp) == 0)
            .find_map(|n| {
                let r = PlanRequest {
                    devices: Devices {
                        count: n,
                        ..req.devices
                    },
                    tensor_parallel: Some(tp),
                    expert_parallel: Some(n / tp),
                    ..req
                };
                fits(&r).map(|q| (n, q))
            });
        match more {
            Some((n, q)) => out.push(format!(
                "  - more devices: {n} of them (--devices {n}x{} --tensor-parallel {tp} --expert-parallel {}) need {} each",
                size_arg(req.devices.bytes_each),
                n / tp,
                fmt_bytes(q.device.total())
            )),
            None => out.push(
                "  - more devices alone do not help: the replicated parts (attention, embedding, cache) do not fit one device".to_string(),
            ),
        }
        let host = PlanRequest {
            experts_on: ExpertsOn::Host,
            tensor_parallel: Some(req.devices.count),
            expert_parallel: Some(1),
            ..req
        };
        if let Some(q) = fits(&host) {
            out.push(format!(
                "  - --experts-on host{}: {} per device, {} of host RAM",
                if req.devices.count > 1 {
                    format!(" --tensor-parallel {}", req.devices.count)
                } else {
                    String::new()
                },
                fmt_bytes(q.device.total()),
                fmt_bytes(q.host.total())
            ));
        }
    }
    if !matches!(p.storage, WeightStorage::Fp8 { .. }) {
        let fp8 = PlanRequest {
            precision: PrecisionChoice::Fp8,
            ..req
        };
        if let Ok(q) = plan(cfg, &fp8) {
            let verdict = match q.device_shortfall() {
                None => "fits".to_string(),
                Some(s) => format!("still {} short", fmt_bytes(s)),
            };
            out.push(format!(
                "  - --precision fp8: {} per device ({verdict})",
                fmt_bytes(q.device.total())
            ));
        }
    }
    let growing = p.device.latent_cache + p.device.workspace;
    if growing > short {
        out.push(format!(
            "  - a shorter --context or a smaller --batch: the latent cache and workspace take {}",
            fmt_bytes(growing)
        ));
    }
    out
}

/// `bytes` as `--devices` reads it back: whole GiB or MiB when exact, else bytes.
fn size_arg(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes % GIB == 0 {
        format!("{}GiB", bytes / GIB)
    } else if bytes % MIB == 0 {
        format!("{}MiB", bytes / MIB)
    } else {
        format!("{bytes}B")
    }
}
