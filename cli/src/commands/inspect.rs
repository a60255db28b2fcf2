use std::collections::BTreeMap;

use concord_core::{ActScaleFormat, DType, Result};
use concord_loader::{
    Architecture, Checkpoint, ExpectedTensor, ModelConfig, RopeScalingKind, ScoringFunc,
    TensorRole, TopkMethod,
};
use concord_runtime::Precision;

use crate::common::ModelArgs;
use crate::stdout::outln;

/// Summarise a checkpoint without loading it: configuration, parameters, dtypes, memory.
///
/// Total and activated parameters, tensor dtypes, the memory its weights need at each
/// precision, and its MTP module if it has one.
///
/// Examples:
///   concord inspect
///   concord inspect --model ./DeepSeek-V3
///   concord inspect --model ./DeepSeek-V3 --measure --backend cpu
///   concord inspect --model ./DeepSeek-V3 --measure --backend cuda --experts-on host
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Also load the model at f32, bf16 and fp8 on --backend and report the memory its
    /// weights actually occupy there.
    #[arg(long)]
    pub measure: bool,
}

pub fn run(args: Args) -> Result<()> {
    let dir = args.model.dir()?;
    let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
    let ckpt = Checkpoint::open(&dir)?;
    outln!("model            {}", dir.display())?;
    outln!(
        "architecture     {}",
        match cfg.architecture {
            Architecture::DeepseekV3 => "DeepseekV3ForCausalLM",
            Architecture::DeepseekV2 => "DeepseekV2ForCausalLM",
        }
    )?;
    outln!(
        "layers           {} ({} dense, {} MoE), hidden {}, heads {}, vocab {}",
        cfg.num_hidden_layers,
        (0..cfg.num_hidden_layers)
            .filter(|&l| !cfg.is_moe_layer(l))
            .count(),
        (0..cfg.num_hidden_layers)
            .filter(|&l| cfg.is_moe_layer(l))
            .count(),
        cfg.hidden_size,
        cfg.num_attention_heads,
        cfg.vocab_size
    )?;
    outln!(
        "attention        MLA: q_lora {}, kv_lora {}, nope {}, rope {}, v {}",
        cfg.q_lora_rank
            .map_or("none (direct q_proj)".to_string(), |r| r.to_string()),
        cfg.kv_lora_rank,
        cfg.qk_nope_head_dim,
        cfg.qk_rope_head_dim,
        cfg.v_head_dim
    )?;
    outln!(
        "experts          {} routed (top {}) + {} shared, {} groups keep {}, {} routing with {} scores, scale {}",
        cfg.n_routed_experts,
        cfg.num_experts_per_tok,
        cfg.n_shared_experts,
        cfg.n_group,
        cfg.topk_group,
        match cfg.topk_method {
            TopkMethod::NoauxTc => "noaux_tc",
            TopkMethod::Greedy => "greedy",
            TopkMethod::GroupLimitedGreedy => "group_limited_greedy",
        },
        match cfg.scoring_func {
            ScoringFunc::Sigmoid => "sigmoid",
            ScoringFunc::Softmax => "softmax",
        },
        cfg.routed_scaling_factor
    )?;
    outln!(
        "rope scaling     {}",
        match &cfg.rope_scaling {
            None => "none".to_string(),
            Some(r) => format!(
                "{} x{}",
                match &r.kind {
                    RopeScalingKind::Yarn => "yarn",
                    RopeScalingKind::Linear => "linear",
                    RopeScalingKind::Other(kind) => kind.as_str(),
                },
                r.factor
            ),
        }
    )?;
    outln!(
        "quantization     {}",
        match &cfg.quantization {
            None => "none".to_string(),
            Some(q) => format!(
                "{} {}, weight blocks {}x{}, activation scales {}",
                q.quant_method,
                q.fmt,
                q.weight_block_size[0],
                q.weight_block_size[1],
                match q.scale_fmt {
                    ActScaleFormat::F32 => "f32 (no scale_fmt)",
                    ActScaleFormat::Ue8m0 => "ue8m0 (rounded up to powers of two)",
                }
            ),
        }
    )?;
    mtp_summary(&cfg, &ckpt)?;

    let expected = concord_loader::expected_tensors(&cfg, false);
    let total: usize = expected
        .iter()
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    let moe_layers = (0..cfg.num_hidden_layers)
        .filter(|&l| cfg.is_moe_layer(l))
        .count();
    let per_expert = 3 * cfg.hidden_size * cfg.moe_intermediate_size;
    let inactive =
        moe_layers * cfg.n_routed_experts.saturating_sub(cfg.num_experts_per_tok) * per_expert;
    outln!(
        "parameters       {} total, {} activated per token",
        human(total),
        human(total - inactive)
    )?;
    outln!(
        "                 (activated = all weights minus the routed experts a token does not use)"
    )?;

    let mut dtypes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for name in ckpt.names() {
        if let Some(t) = ckpt.get(name) {
            let e = dtypes.entry(t.dtype.to_string()).or_default();
            e.0 += 1;
            e.1 += t.data.len();
        }
    }
    for (dtype, (count, bytes)) in &dtypes {
        outln!("tensors {dtype:8} {count} tensors, {}", human_bytes(*bytes))?;
    }

    let quantizable: usize = expected
        .iter()
        .filter(|t| {
            matches!(
                t.role,
                concord_loader::TensorRole::Weight { quantizable: true }
            )
        })
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    let scales = quantizable.div_ceil(128 * 128);
    // fp8 decodes MLA in the absorbed form from a BF16 dequantization of kv_b_proj.
    let kv_b: usize = expected
        .iter()
        .filter(|t| t.name.ends_with(".kv_b_proj.weight"))
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    outln!(
        "weights memory   f32 {}",
        human_bytes(total * DType::F32.size_in_bytes())
    )?;
    outln!(
        "                 bf16 {}",
        human_bytes(total * DType::BF16.size_in_bytes())
    )?;
    outln!(
        "                 fp8 {} (F8_E4M3 projections + f32 block scales, BF16 elsewhere and kv_b_proj for decode)",
        human_bytes(quantizable + scales * 4 + (total - quantizable) * 2 + kv_b * 2)
    )?;
    if args.measure {
        for precision in [Precision::F32, Precision::Bf16, Precision::Fp8] {
            let model = ModelArgs {
                precision: Some(precision),
                ..args.model.clone()
            }
            .load()?;
            let host = model.host_weight_bytes();
            if host == 0 {
                outln!(
                    "measured         {precision:5} {} of weights on {}",
                    human_bytes(model.weight_bytes()),
                    args.model.backend
                )?;
            } else {
                outln!(
                    "measured         {precision:5} {} of weights on {}, {} of routed experts in host RAM",
                    human_bytes(model.weight_bytes() - host),
                    args.model.backend,
                    human_bytes(host)
                )?;
            }
        }
    }
    Ok(())
}

fn elements(tensors: &[&ExpectedTensor]) -> usize {
    tensors
        .iter()
        .map(|t| t.shape.iter().product::<usize>())
        .sum()
}

/// The MTP module(s): where they are, whether the checkpoint holds them, their parameters and
/// memory, and whether their embedding/head copies share the main model's memory.
fn mtp_summary(cfg: &ModelConfig, ckpt: &Checkpoint) -> Result<()> {
    let k = cfg.num_nextn_predict_layers;
    if k == 0 {
        return outln!("MTP              none (num_nextn_predict_layers 0)");
    }
    let first = cfg.num_hidden_layers;
    let all = concord_loader::expected_tensors(cfg, true);
    let prefix = format!("model.layers.{first}.");
    let module: Vec<&ExpectedTensor> = all.iter().filter(|t| t.name.starts_with(&prefix)).collect();
    let missing: Vec<&str> = module
        .iter()
        .filter(|t| !ckpt.contains(&t.name))
        .map(|t| t.name.as_str())
        .collect();
    outln!(
        "MTP              {k} module{} at model.layers.{first}{} (num_nextn_predict_layers {k}); \
         loaded by --speculative mtp and logits --mtp{}",
        if k == 1 { "" } else { "s" },
        if k == 1 {
            String::new()
        } else {
            format!("..{}", first + k - 1)
        },
        if k > 1 {
            "; drafts re-apply the first"
        } else {
            ""
        }
    )?;
    if !missing.is_empty() {
        return outln!(
            "                 {} of its {} tensors are missing (e.g. `{}`): it cannot be loaded",
            missing.len(),
            module.len(),
            missing[0]
        );
    }
    let copy_of = |suffix: &str, main: &str| {
        let copy = format!("{prefix}{suffix}");
        concord_runtime::model::is_identical_copy(ckpt, &copy, main)
    };
    let embed_shared = copy_of("embed_tokens.weight", "model.embed_tokens.weight");
    let head_main = concord_runtime::model::main_head_name(cfg, ckpt);
    let head_shared = copy_of("shared_head.head.weight", head_main);
    let shared_note = |shared: bool, main: &str| {
        if shared {
            format!("identical to {main}: one copy in memory")
        } else {
            "differs from the main tensor: loaded separately".to_string()
        }
    };
    outln!(
        "                 embed_tokens {}; shared_head.head {}",
        shared_note(embed_shared, "model.embed_tokens"),
        shared_note(head_shared, head_main.trim_end_matches(".weight"))
    )?;
    let is_copy = |t: &&&ExpectedTensor| {
        (embed_shared && t.name.ends_with(".embed_tokens.weight"))
            || (head_shared && t.name.ends_with(".shared_head.head.weight"))
    };
    let held: Vec<&ExpectedTensor> = module.iter().filter(|t| !is_copy(t)).copied().collect();
    let quantizable: Vec<&ExpectedTensor> = held
        .iter()
        .filter(|t| t.role == (TensorRole::Weight { quantizable: true }))
        .copied()
        .collect();
    let kv_b: Vec<&ExpectedTensor> = held
        .iter()
        .filter(|t| t.name.ends_with(".kv_b_proj.weight"))
        .copied()
        .collect();
    let (n_held, n_quant, n_kvb) = (elements(&held), elements(&quantizable), elements(&kv_b));
    outln!(
        "                 {} parameters ({} with its copies); memory bf16 {}, fp8 {}",
        human(n_held),
        human(elements(&module)),
        human_bytes(n_held * 2),
        human_bytes(n_quant + n_quant.div_ceil(128 * 128) * 4 + (n_held - n_quant) * 2 + n_kvb * 2)
    )
}

fn human(n: usize) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

pub(crate) fn human_bytes(n: usize) -> String {
    let n = n as f64;
    match n {
        n if n >= 1024.0 * 1024.0 * 1024.0 => format!("{:.2} GiB", n / 1024f64.powi(3)),
        n if n >= 1024.0 * 1024.0 => format!("{:.2} MiB", n / 1024f64.powi(2)),
        n => format!("{:.1} KiB", n / 1024.0),
    }
}
