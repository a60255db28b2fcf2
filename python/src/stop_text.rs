//! Stop strings: generated text ends just before the first occurrence of any of them (the
//! stop string itself is not returned), as OpenAI-style `stop` does. Text that might be the
//! start of a stop string is held back until the next piece decides it.

/// Scans generated text for stop strings, piece by piece.
#[derive(Debug, Default)]
pub struct StopText {
    stops: Vec<String>,
    /// Text received but not handed out: it ends with the start of some stop string.
    held: String,
}

/// What one piece of generated text gives.
#[derive(Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Text that can be handed out now (possibly empty).
    pub text: String,
    /// A stop string was found: generation ends here.
    pub stopped: bool,
}

impl StopText {
    /// A scanner for `stops`; empty strings are ignored (they would stop before any text).
    pub fn new(stops: Vec<String>) -> Self {
        StopText {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
        }
    }

    /// Adds a piece of text; returns what is safe to hand out and whether a stop string ended
    /// generation.
    pub fn push(&mut self, piece: &str) -> Scanned {
        self.held.push_str(piece);
        let first_stop = self.stops.iter().filter_map(|s| self.held.find(s)).min();
        if let Some(at) = first_stop {
            self.held.truncate(at);
            return Scanned {
                text: std::mem::take(&mut self.held),
                stopped: true,
            };
        }
        let keep = self.partial_stop_len();
        let text = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        Scanned {
            text,
            stopped: false,
        }
    }

    /// Text still held back, once generation has ended without a stop string.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Bytes at the end of the held text that begin some stop string (the longest such tail).
    fn partial_stop_len(&self) -> usize {
        let held = self.held.as_str();
        (1..=held.len())
            .rev()
            .filter(|&n| held.is_char_boundary(held.len() - n))
            .find(|&n| {
                let tail = &held[held.len() - n..];
                self.stops
                    .iter()
                    .any(|s| s.len() > n && s.starts_with(tail))
            })
            .unwrap_or(0)
    }
}
