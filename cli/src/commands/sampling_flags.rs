//! The sampling flags `generate` and `chat` share beyond temperature/top-k/top-p: min-p and the
//! three penalties (docs/numerics.md §Sampling).
use concord_runtime::GenerateParams;

/// `--min-p`, `--presence-penalty`, `--frequency-penalty`, `--repetition-penalty`.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingFlags {
    /// Drop tokens whose probability is below P times the most likely one's, before top-k and
    /// top-p (0 = off; 0 ≤ P ≤ 1; greedy decoding ignores it).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub min_p: f32,
    /// Subtract X once from the logit of every token the output already holds (0 = off;
    /// −2 ≤ X ≤ 2).
    #[arg(
        long,
        default_value_t = 0.0,
        allow_negative_numbers = true,
        value_name = "X"
    )]
    pub presence_penalty: f32,
    /// Subtract X from a token's logit per occurrence in the output (0 = off; −2 ≤ X ≤ 2).
    #[arg(
        long,
        default_value_t = 0.0,
        allow_negative_numbers = true,
        value_name = "X"
    )]
    pub frequency_penalty: f32,
    /// For tokens in the prompt or the output, divide positive logits by R and multiply the
    /// others by R (1 = off; R > 0). Greedy decoding sees all three penalties.
    #[arg(long, default_value_t = 1.0, value_name = "R")]
    pub repetition_penalty: f32,
}

impl SamplingFlags {
    /// `params` with these flags' values.
    pub fn apply(&self, params: GenerateParams) -> GenerateParams {
        GenerateParams {
            min_p: self.min_p,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            repetition_penalty: self.repetition_penalty,
            ..params
        }
    }
}
