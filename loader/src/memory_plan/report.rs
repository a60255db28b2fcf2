//! The plan as text: one column for each device, one for host RAM.

use crate::config::ModelConfig;

use super::checkpoint_size::SizeSource;
use super::layout::ExpertsOn;
use super::shapes::{Category, WeightStorage};
use super::workspace::PREFILL_CHUNK;
use super::{verdict::verdict, MemoryPlan, SideMemory};

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// Bytes as GiB with two decimals, or MiB below 1 GiB (tiny test models).
pub fn fmt_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes == 0 {
        "0".to_string()
    } else if b >= GIB {
        format!("{:.2} GiB", b / GIB)
    } else {
        format!("{:.2} MiB", b / MIB)
    }
}

fn storage_text(s: WeightStorage) -> String {
    match s {
        WeightStorage::Fp8 { block } => format!(
            "fp8 (projections F8_E4M3 + F32 {}x{} block scales; embeddings, heads, norms, router BF16; BF16 activations and cache)",
            block[0], block[1]
        ),
        WeightStorage::Bf16 => {
            "bf16 (weights BF16, router bias F32; BF16 activations and cache)".to_string()
        }
        WeightStorage::F32 => "f32 (weights, activations and cache F32)".to_string(),
    }
}

/// The full report: what was planned, the table, the model's total and (when the checkpoint's
/// files are there) its actual size, then the verdict.
pub fn render(cfg: &ModelConfig, p: &MemoryPlan, actual: Option<(u64, SizeSource)>) -> Vec<String> {
    let req = &p.request;
    let l = &p.layout;
    let mut out = Vec::new();
    let moe = (0..cfg.num_hidden_layers)
        .filter(|&i| cfg.is_moe_layer(i))
        .count();
    out.push(format!(
        "model        {} layers ({} dense, {moe} MoE) + {} MTP, {} routed experts, hidden {}, vocab {}",
        cfg.num_hidden_layers,
        cfg.num_hidden_layers - moe,
        cfg.num_nextn_predict_layers,
        cfg.n_routed_experts,
        cfg.hidden_size,
        cfg.vocab_size
    ));
    out.push(format!(
        "devices      {} x {}; tensor-parallel {} x expert-parallel {}, routed experts on {}",
        req.devices.count,
        fmt_bytes(req.devices.bytes_each),
        l.tensor_parallel,
        l.expert_parallel,
        match l.experts_on {
            ExpertsOn::Device => "the devices",
            ExpertsOn::Host => "the host",
        }
    ));
    out.push(format!("precision    {}", storage_text(p.storage)));
    out.push(format!(
        "context      {} tokens x batch {}{}",
        req.context,
        req.batch,
        if req.context > cfg.max_position_embeddings {
            format!(
                " (beyond the model's max_position_embeddings = {})",
                cfg.max_position_embeddings
            )
        } else {
            String::new()
        }
    ));
    out.push(String::new());

    let with_host = p.host.total() > 0;
    let head = format!("each device (x{})", req.devices.count);
    out.push(if with_host {
        format!("{:<30}{head:>20}{:>20}", "", "host RAM")
    } else {
        format!("{:<30}{head:>20}", "")
    });
    let row = |label: &str, d: u64, h: u64| {
        if with_host {
            format!("{label:<30}{:>20}{:>20}", fmt_bytes(d), fmt_bytes(h))
        } else {
            format!("{label:<30}{:>20}", fmt_bytes(d))
        }
    };
    let (d, h): (&SideMemory, &SideMemory) = (&p.device, &p.host);
    for c in Category::ALL {
        if p.whole_model.get(c) > 0 {
            out.push(row(
                &format!("  {}", c.label()),
                d.weights.get(c),
                h.weights.get(c),
            ));
        }
    }
    out.push(row("weights", d.weights.total(), h.weights.total()));
    if d.decode_copies > 0 {
        out.push(row("kv_b_proj BF16 decode copy", d.decode_copies, 0));
    }
    out.push(row("latent cache", d.latent_cache, h.latent_cache));
    out.push(row("workspace (estimate)", d.workspace, h.workspace));
    out.push(row("total", d.total(), h.total()));
    let dev_cap = req.devices.bytes_each;
    let free = |cap: u64, need: u64| {
        if need > cap {
            format!("-{}", fmt_bytes(need - cap))
        } else {
            fmt_bytes(cap - need)
        }
    };
    match (with_host, req.host_memory) {
        (true, Some(hc)) => {
            out.push(row("capacity", dev_cap, hc));
            out.push(format!(
                "{:<30}{:>20}{:>20}",
                "free",
                free(dev_cap, d.total()),
                free(hc, h.total())
            ));
        }
        (true, None) => {
            out.push(format!(
                "{:<30}{:>20}{:>20}",
                "capacity",
                fmt_bytes(dev_cap),
                "(not given)"
            ));
            out.push(format!("{:<30}{:>20}", "free", free(dev_cap, d.total())));
        }
        (false, _) => {
            out.push(row("capacity", dev_cap, 0));
            out.push(format!("{:<30}{:>20}", "free", free(dev_cap, d.total())));
        }
    }
    out.push(String::new());
    out.push(format!(
        "whole model  {} bytes ({}) of weights at {}, every tensor once{}",
        p.whole_model.total(),
        fmt_bytes(p.whole_model.total()),
        p.storage.name(),
        if cfg.num_nextn_predict_layers > 0 {
            " incl. MTP"
        } else {
            ""
        }
    ));
    if let Some((bytes, source)) = actual {
        let diff = 100.0 * (p.as_stored_total as f64 - bytes as f64) / bytes as f64;
        out.push(format!(
            "checkpoint   {bytes} bytes ({}) by its {}; the plan's as-stored total {} bytes differs by {diff:+.3} %",
            fmt_bytes(bytes),
            source.describe(),
            p.as_stored_total
        ));
    }
    out.push(format!(
        "workspace    estimate for prefill chunks of {PREFILL_CHUNK} tokens per sequence (docs/memory-plan.md gives the formula)"
    ));
    out.push(String::new());
    out.extend(verdict(cfg, p));
    out
}
