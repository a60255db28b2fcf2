//! Stop strings matched on the decoded text, across token boundaries.
//!
//! Text that could still be the beginning of a stop string is held back until the next token
//! decides it, so a match never straddles text already sent; the matched stop string and
//! everything after it are dropped.

/// Releases decoded text, holding back what may start a stop string.
#[derive(Debug, Default)]
pub struct StopStringFilter {
    stops: Vec<String>,
    held: String,
}

/// What one piece of decoded text released.
#[derive(Debug, PartialEq, Eq)]
pub struct ReleasedText {
    /// Text safe to send.
    pub text: String,
    /// A stop string matched: generation ends, nothing after it is sent.
    pub stopped: bool,
}

impl StopStringFilter {
    /// A filter for `stops` (empty strings are ignored).
    pub fn new(stops: Vec<String>) -> Self {
        StopStringFilter {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
        }
    }

    /// Adds decoded text; returns what can be sent now.
    pub fn push(&mut self, text: &str) -> ReleasedText {
        self.held.push_str(text);
        let first_match = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first_match {
            let text = self.held[..at].to_owned();
            self.held.clear();
            return ReleasedText {
                text,
                stopped: true,
            };
        }
        let keep = self.longest_stop_prefix_suffix();
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_owned();
        self.held.drain(..cut);
        ReleasedText {
            text,
            stopped: false,
        }
    }

    /// The text still held back (sent when generation ends without a match).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Byte length of the longest suffix of the held text that is a proper prefix of a stop.
    fn longest_stop_prefix_suffix(&self) -> usize {
        self.held
            .char_indices()
            .map(|(i, _)| &self.held[i..])
            .find(|suffix| self.stops.iter().any(|s| s.starts_with(suffix)))
            .map_or(0, str::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_a_possible_stop_and_drops_the_match() {
        let mut f = StopStringFilter::new(vec!["END".into()]);
        assert_eq!(f.push("abE").text, "ab");
        assert_eq!(f.push("N").text, "");
        let r = f.push("Dxyz");
        assert_eq!(
            r,
            ReleasedText {
                text: String::new(),
                stopped: true
            }
        );
    }

    #[test]
    fn releases_a_false_start() {
        let mut f = StopStringFilter::new(vec!["END".into()]);
        assert_eq!(f.push("xEN").text, "x");
        assert_eq!(f.push("o").text, "ENo");
        assert_eq!(f.push("E").text, "");
        assert_eq!(f.finish(), "E");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let mut f = StopStringFilter::new(vec!["cd".into(), "b".into()]);
        let r = f.push("abcd");
        assert_eq!(r.text, "a");
        assert!(r.stopped);
    }
}
