//! The tokens a sequence has seen, as the penalties read them (docs/numerics.md §Sampling):
//! which ids the prompt holds and how often each id occurs in the output.

use std::collections::BTreeMap;

/// Per id: occurrences in the output and whether the prompt holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenHistory {
    seen: BTreeMap<u32, (u32, bool)>,
}

impl TokenHistory {
    /// The history after `prompt`, with no output yet.
    pub fn new(prompt: &[u32]) -> Self {
        let mut h = TokenHistory::default();
        for &id in prompt {
            h.seen.entry(id).or_default().1 = true;
        }
        h
    }

    /// `prompt`, then `output` generated after it.
    pub fn with_output(prompt: &[u32], output: &[u32]) -> Self {
        let mut h = TokenHistory::new(prompt);
        for &id in output {
            h.push_output(id);
        }
        h
    }

    /// Records one generated token.
    pub fn push_output(&mut self, id: u32) {
        let count = &mut self.seen.entry(id).or_default().0;
        *count = count.saturating_add(1);
    }

    /// Whether no token is recorded.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Occurrences of `id` in the output.
    pub fn output_count(&self, id: u32) -> u32 {
        self.seen.get(&id).map_or(0, |e| e.0)
    }

    /// The `Penalize` op's entries `(id, output count, in prompt as 0/1)`, ids ascending, each
    /// id once.
    pub fn entries(&self) -> Vec<[u32; 3]> {
        self.seen
            .iter()
            .map(|(&id, &(count, in_prompt))| [id, count, u32::from(in_prompt)])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_ids_are_flagged_and_only_output_is_counted() {
        let h = TokenHistory::with_output(&[5, 2, 5], &[2, 9, 2]);
        assert_eq!(h.entries(), vec![[2, 2, 1], [5, 0, 1], [9, 1, 0]]);
        assert_eq!(h.output_count(5), 0);
        assert!(TokenHistory::new(&[]).is_empty());
    }
}
