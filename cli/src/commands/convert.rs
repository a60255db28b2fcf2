use std::io::IsTerminal;
use std::path::PathBuf;

use clap::ValueEnum;
use concord_core::Result;
use concord_runtime::convert::{convert_checkpoint, ConvertOptions, ConvertTarget};

/// Format to convert to.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Target {
    /// BF16 weights: FP8 blocks dequantized (fp8 × scale_inv → BF16), no quantization_config.
    Bf16,
    /// FP8 e4m3fn weights with 128×128 f32 `weight_scale_inv` blocks (DeepSeek's format).
    Fp8,
}

/// Convert a checkpoint to BF16 or FP8, tensor by tensor (a checkpoint larger than RAM works).
///
/// Writes a Hugging Face checkpoint: sharded safetensors, model.safetensors.index.json,
/// config.json (with or without quantization_config) and the tokenizer files.
///
/// OUT_DIR must not exist, or be an empty directory (which is replaced); its parent must
/// exist. A non-empty directory, a file or a symbolic link there is refused, never overwritten,
/// and so is an OUT_DIR that is IN_DIR, lies inside it or contains it. The checkpoint is built in
/// a uniquely named hidden directory beside OUT_DIR (.NAME.concord-tmp-PID-RANDOM), re-opened
/// and checked tensor by tensor (names, dtypes, shapes, the model's tensor inventory), and only
/// then renamed to OUT_DIR. On any error, Ctrl-C or SIGTERM that directory is removed and the
/// command exits non-zero (130 for a signal): nothing is left behind, and nothing this run did
/// not create is deleted.
///
/// Examples:
///   concord convert --to bf16 ./DeepSeek-V3 ./DeepSeek-V3-bf16
///   concord convert --to fp8 ./my-bf16-model ./my-fp8-model --shard-size-mb 4096
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Target format.
    #[arg(long, value_enum)]
    pub to: Target,
    /// Checkpoint to read.
    pub in_dir: PathBuf,
    /// New checkpoint directory.
    pub out_dir: PathBuf,
    /// Largest shard in MiB.
    #[arg(long, default_value_t = 4096)]
    pub shard_size_mb: usize,
}

pub fn run(args: Args) -> Result<()> {
    let options = ConvertOptions {
        target: match args.to {
            Target::Bf16 => ConvertTarget::Bf16,
            Target::Fp8 => ConvertTarget::Fp8,
        },
        shard_bytes: args.shard_size_mb.max(1) << 20,
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "converting [{bar:30}] {pos}/{len} tensors {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let mut progress = |done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
        true
    };
    let result = convert_checkpoint(&args.in_dir, &args.out_dir, &options, &mut progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    result?;
    eprintln!("wrote {}", args.out_dir.display());
    Ok(())
}
