//! `concord`: run DeepSeek-V3-architecture models on any backend with the same bits.

mod bandwidth;
mod commands;
mod common;
mod decode_bytes;
mod fail_point;
mod ranks;
mod stdout;
mod synthetic;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Concord runs DeepSeek-V3-family checkpoints (V3, V3.1, R1, V2, V2-Lite, Moonlight…) in
/// Hugging Face format on CPU, OpenCL, CUDA, ROCm and Ascend, with bit-identical results in
/// exact mode.
///
/// Without --model the bundled demo model is used, so every command works out of the box:
///
///   concord generate --prompt "Once upon a time"
///
/// Logs go to stderr; set CONCORD_LOG=info (or debug, trace) for more.
#[derive(Parser)]
#[command(name = "concord", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// CPU threads to compute with (the cpu backend and host-side work). Default: every core.
    /// Results are bit-identical whatever the count.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Subcommand)]
// No doc comments on the variants: clap would show them instead of each command's own help
// (its `Args` doc comment, with the examples).
enum Command {
    Generate(commands::generate::Args),
    Chat(commands::chat::Args),
    Logits(commands::logits::Args),
    Tokenize(commands::tokenize::Args),
    Inspect(commands::inspect::Args),
    Convert(commands::convert::Args),
    Kernels(commands::kernels::Args),
    Serve(commands::serve::Args),
    Bench(commands::bench::Args),
    /// List the backends and whether each can run here (with the reason when not).
    Backends,
    Conformance(commands::conformance::Args),
    Plan(commands::plan::Args),
}

/// Exit status after SIGINT/SIGTERM, as shells report an interrupted command.
const INTERRUPTED: u8 = 130;

/// On SIGINT/SIGTERM, removes the outputs still being staged (so Ctrl-C leaves nothing behind)
/// and exits 130.
fn remove_staged_outputs_on_interrupt() {
    let installed = ctrlc::set_handler(|| {
        concord_runtime::staged_output::remove_all_staged();
        std::process::exit(i32::from(INTERRUPTED));
    });
    if let Err(e) = installed {
        tracing::warn!(
            "no SIGINT/SIGTERM handler ({e}); an interrupted run may leave staging files"
        );
    }
}

fn main() -> ExitCode {
    common::init_logging();
    let cli = Cli::parse();
    // `serve` handles SIGINT/SIGTERM itself (graceful shutdown, exit 0) and stages no output.
    if !matches!(cli.command, Command::Serve(_)) {
        remove_staged_outputs_on_interrupt();
    }
    if let Some(n) = cli.threads {
        if let Err(e) = concord_runtime::set_cpu_threads(n) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Generate(a) => commands::generate::run(a),
        Command::Chat(a) => commands::chat::run(a),
        Command::Logits(a) => commands::logits::run(a),
        Command::Tokenize(a) => commands::tokenize::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Convert(a) => commands::convert::run(a),
        Command::Kernels(a) => commands::kernels::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Backends => commands::backends::run(),
        Command::Conformance(a) => commands::conformance::run(a),
        Command::Plan(a) => commands::plan::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output is gone (`concord inspect | head -1`): a normal end.
        Err(e) if stdout::is_closed_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}error: {e:#}", ranks::error_prefix());
            ExitCode::FAILURE
        }
    }
}
