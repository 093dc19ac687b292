//! Integrity of one response stream by `sequence_number`: loss, duplication and reordering.
//!
//! The checker expects 0, 1, 2, … . A number above the expected one opens a gap (its missing
//! numbers count as lost until they show up); a missing number that arrives late turns from lost
//! into reordered; a number seen before is a duplicate. The set of open gaps is bounded; numbers
//! beyond the bound stay counted as lost.

use serde::Serialize;
use std::collections::BTreeSet;

/// Open gap entries remembered per stream; more are counted as lost for good.
const MAX_TRACKED_GAPS: usize = 4096;

/// Counts of stream-integrity violations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Integrity {
    /// Sequence numbers never received.
    pub lost: u64,
    /// Sequence numbers received more than once.
    pub duplicated: u64,
    /// Sequence numbers received after a higher one.
    pub reordered: u64,
    /// Events without a `sequence_number`.
    pub unnumbered: u64,
}

impl Integrity {
    /// True when no violation was counted.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.reordered == 0 && self.unnumbered == 0
    }

    /// Adds another stream's counts.
    pub fn add(&mut self, other: &Self) {
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.unnumbered += other.unnumbered;
    }
}

/// The checker of one response stream.
#[derive(Debug, Default)]
pub struct SequenceChecker {
    next: u64,
    missing: BTreeSet<u64>,
    counts: Integrity,
}

impl SequenceChecker {
    /// A checker expecting sequence number 0 first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event's `sequence_number` (`None` when the event had none).
    pub fn observe(&mut self, sequence: Option<u64>) {
        let Some(n) = sequence else {
            self.counts.unnumbered += 1;
            return;
        };
        if n == self.next {
            self.next += 1;
        } else if n > self.next {
            for gap in self.next..n {
                if self.missing.len() < MAX_TRACKED_GAPS {
                    self.missing.insert(gap);
                }
                self.counts.lost += 1;
            }
            self.next = n + 1;
        } else if self.missing.remove(&n) {
            self.counts.lost -= 1;
            self.counts.reordered += 1;
        } else {
            self.counts.duplicated += 1;
        }
    }

    /// Number of distinct in-order-or-late numbers received so far (the next expected one).
    pub fn next_expected(&self) -> u64 {
        self.next
    }

    /// The counts so far.
    pub fn finish(&self) -> Integrity {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(seq: &[u64]) -> Integrity {
        let mut c = SequenceChecker::new();
        for &n in seq {
            c.observe(Some(n));
        }
        c.finish()
    }

    #[test]
    fn a_clean_stream_counts_nothing() {
        assert!(check(&[0, 1, 2, 3, 4]).is_clean());
    }

    #[test]
    fn gaps_duplicates_and_late_numbers_are_told_apart() {
        assert_eq!(
            check(&[0, 1, 3, 4]),
            Integrity {
                lost: 1,
                ..Integrity::default()
            }
        );
        assert_eq!(
            check(&[1, 2]),
            Integrity {
                lost: 1,
                ..Integrity::default()
            }
        );
        assert_eq!(
            check(&[0, 1, 1, 2]),
            Integrity {
                duplicated: 1,
                ..Integrity::default()
            }
        );
        assert_eq!(
            check(&[0, 2, 1, 3]),
            Integrity {
                reordered: 1,
                ..Integrity::default()
            }
        );
        assert_eq!(
            check(&[0, 3, 1, 1, 5]),
            Integrity {
                lost: 2,
                reordered: 1,
                duplicated: 1,
                unnumbered: 0
            }
        );
        let mut c = SequenceChecker::new();
        c.observe(None);
        assert_eq!(c.finish().unnumbered, 1);
        assert!(!c.finish().is_clean());
    }
}
