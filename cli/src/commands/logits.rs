use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use concord_core::{Error, Result};
use concord_runtime::staged_output::{resolve_file_target, write_file_atomically};
use concord_runtime::LogitRows;

use crate::common::{parse_ids, ModelArgs};
use crate::fail_point;

/// Write the f32 logits of every position to a safetensors file.
///
/// One sequence gives tensor `logits` [tokens, vocab_size]. Several --ids run as one batch and
/// give `logits.0`, `logits.1`, … one per sequence (each bit-identical to running it alone).
/// With --mtp the file also holds `mtp_logits` (or `mtp_logits.{i}`) [tokens, vocab_size]: row
/// r is the MTP module's prediction of token r+2, from the main model's hidden state at r and
/// token r+1 (for the last row, the main model's greedy next token).
///
/// Examples:
///   concord logits --model DIR --ids 0,5,17 --out logits.safetensors
///   concord logits --model DIR --ids 0,5,17 --ids 0,9 --precision f32 --out batch.safetensors
///   concord logits --model DIR --ids 0,5,17 --mtp --precision f32 --out mtp.safetensors
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Token ids of one sequence, comma-separated; repeat for a batch.
    #[arg(long, action = clap::ArgAction::Append, required_unless_present = "prompt")]
    pub ids: Vec<String>,
    /// Prompt text instead of ids (tokenized with a leading BOS).
    #[arg(long, conflicts_with = "ids")]
    pub prompt: Option<String>,
    /// Output file (safetensors); written whole or not at all, through a uniquely named
    /// staging file in the same directory that is renamed over it. An existing regular file is
    /// replaced; a device, FIFO, socket or directory is refused.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the MTP module's logits (`mtp_logits`); the model must have one
    /// (`num_nextn_predict_layers` ≥ 1).
    #[arg(long)]
    pub mtp: bool,
}

pub fn run(args: Args) -> Result<()> {
    // Refuse a device/FIFO/directory target before spending the forward pass on it.
    resolve_file_target(&args.out)?;
    let sequences: Vec<Vec<u32>> = match &args.prompt {
        Some(text) => vec![args.model.tokenizer()?.encode(text, true)?],
        None => args
            .ids
            .iter()
            .map(|s| parse_ids(s))
            .collect::<Result<_>>()?,
    };
    let model = args.model.load_with_mtp(args.mtp)?;
    let mut seqs = sequences
        .iter()
        .map(|s| model.new_sequence(s.len()))
        .collect::<Result<Vec<_>>>()?;
    let mut seq_refs: Vec<_> = seqs.iter_mut().collect();
    let token_refs: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
    let (logits, mtp_logits) = if args.mtp {
        let mut mtp_seqs = sequences
            .iter()
            .map(|s| model.new_mtp_sequence(s.len()))
            .collect::<Result<Vec<_>>>()?;
        let mut mtp_refs: Vec<_> = mtp_seqs.iter_mut().collect();
        let (logits, mtp) = model.forward_with_mtp(&mut seq_refs, &mut mtp_refs, &token_refs)?;
        (logits, Some(mtp))
    } else {
        (
            model.forward(&mut seq_refs, &token_refs, LogitRows::All)?,
            None,
        )
    };
    let vocab = logits.vocab;
    let mut tensors = BTreeMap::new();
    let mut add = |base: &str, per_sequence: &[Vec<f32>]| {
        for (i, (rows, toks)) in per_sequence.iter().zip(&sequences).enumerate() {
            let name = if sequences.len() == 1 {
                base.to_string()
            } else {
                format!("{base}.{i}")
            };
            let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.insert(name, (vec![toks.len(), vocab], bytes));
        }
    };
    add("logits", &logits.per_sequence);
    if let Some(mtp) = &mtp_logits {
        add("mtp_logits", &mtp.per_sequence);
    }
    if !crate::ranks::writes_output() {
        // Every rank computed the same logits; rank 0 writes them.
        return Ok(());
    }
    write_safetensors(&args.out, &tensors)
}

/// Writes F32 tensors to `path` whole or not at all: serialized into a uniquely named staging
/// file beside it, renamed over it once written and flushed (see
/// [`concord_runtime::staged_output`]). A `path` that is a device, FIFO, socket or directory
/// (or a link to one) is refused, never replaced.
fn write_safetensors(path: &Path, tensors: &BTreeMap<String, (Vec<usize>, Vec<u8>)>) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, (shape, bytes))| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::invalid(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let data = safetensors::serialize(views, None).map_err(|e| Error::invalid(e.to_string()))?;
    write_file_atomically(path, |file| {
        let (head, tail) = data.split_at(data.len() / 2);
        file.write_all(head).map_err(|e| Error::io(path, e))?;
        // Half written, as a disk that fills up mid-write leaves it.
        fail_point::check("logits-write", path)?;
        fail_point::stall("logits-write");
        file.write_all(tail).map_err(|e| Error::io(path, e))
    })
}
