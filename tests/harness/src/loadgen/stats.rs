//! Per-session measurements, merged per round and per target. Each session owns its own
//! [`SessionStats`] (no shared state on the per-event path); merging happens once at the end.

use std::time::Instant;

use super::histogram::Histogram;
use super::stream_check::Integrity;

/// Error messages kept per session (the rest are only counted).
const MAX_ERROR_SAMPLES: usize = 4;

/// Measurements of one session (or a merge of several).
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    /// `response.create` sent → first event of that response, ns (measured turns only).
    pub turn_start: Histogram,
    /// `mock_ts_ns` of a delta → its arrival, ns (measured turns only).
    pub event_latency: Histogram,
    /// WebSocket connect (TCP + upgrade) → open, ns, one sample per connect.
    pub connect: Histogram,
    /// Events received in measured turns.
    pub events: u64,
    /// Events received in every turn, warm-up included (what the target relayed).
    pub events_all: u64,
    /// Measured turns that completed.
    pub turns_ok: u64,
    /// Turns (warm-up included) that ended in an error event, a non-completed terminal, a
    /// closed socket or a timeout.
    pub errors: u64,
    /// Stream-integrity counts over every turn, warm-up included.
    pub integrity: Integrity,
    /// First and last instant of measured activity.
    pub window: Option<(Instant, Instant)>,
    /// A few error descriptions (types and statuses, never bodies).
    pub error_samples: Vec<String>,
}

impl SessionStats {
    /// Counts one failed turn with a short reason.
    pub fn error(&mut self, reason: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(reason);
        }
    }

    /// Extends the measured window to cover `[start, end]`.
    pub fn cover(&mut self, start: Instant, end: Instant) {
        self.window = Some(match self.window {
            None => (start, end),
            Some((a, b)) => (a.min(start), b.max(end)),
        });
    }

    /// Adds another session's measurements.
    pub fn merge(&mut self, other: &Self) {
        self.turn_start.merge(&other.turn_start);
        self.event_latency.merge(&other.event_latency);
        self.connect.merge(&other.connect);
        self.events += other.events;
        self.events_all += other.events_all;
        self.turns_ok += other.turns_ok;
        self.errors += other.errors;
        self.integrity.add(&other.integrity);
        if let Some((a, b)) = other.window {
            self.cover(a, b);
        }
        for e in &other.error_samples {
            if self.error_samples.len() < MAX_ERROR_SAMPLES {
                self.error_samples.push(e.clone());
            }
        }
    }

    /// Seconds between the first and last measured activity.
    pub fn window_secs(&self) -> f64 {
        self.window
            .map_or(0.0, |(a, b)| b.duration_since(a).as_secs_f64())
    }
}
