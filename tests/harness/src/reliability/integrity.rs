//! Integrity of every response a client sees, and of the socket and lane it sees it on.
//!
//! Each create carries a tag (`metadata.rel_tag`, `s<session>.<lane>.t<turn>`) that the upstream
//! echoes in every response object. A [`ResponseCheck`] follows one response:
//!
//! ```text
//!   sent ──response.created (seq 0, our tag)──▶ streaming ──terminal──▶ ended
//!    │                                              │                     │
//!    │ error event                                  │ close / timeout     │ any later event
//!    ▼                                              ▼                     ▼
//!  errored (one clear error)                     broken               after_terminal
//! ```
//!
//! Counted per response: sequence numbers contiguous from 0 (lost, duplicated, reordered,
//! unnumbered), exactly one terminal (`multiple_terminals`), nothing after it (`after_terminal`),
//! and misrouting: a response object with another tag, an `item_id` this response never added,
//! a `stream_id` that is not the lane the response was created on, or an event on a lane or
//! socket with no response in flight.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::loadgen::stream_check::SequenceChecker;
use crate::protocol::is_response_terminal;

/// Distinct outcome reasons kept by name; more are folded into `other`.
const MAX_REASONS: usize = 64;

/// How one response (turn) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `response.completed`.
    Completed,
    /// `response.failed` or `response.incomplete`.
    FailedTerminal(String),
    /// An `error` event (a clear error): HTTP-like status and code.
    Error {
        /// The event's `status`.
        status: Option<u64>,
        /// `error.code`.
        code: Option<String>,
    },
    /// The transport ended before a terminal event: close code (1006 without one), or a refused
    /// upgrade / POST status.
    Broken(String),
    /// No event within the per-event deadline: a hang.
    Timeout,
    /// The client itself gave the response up (a fault row's misbehaving client, by design):
    /// how, as a bounded label.
    Abandoned(String),
}

impl Outcome {
    /// A bounded label for the reason tables (statuses, codes and close codes only).
    pub fn reason(&self) -> String {
        match self {
            Self::Completed => "completed".into(),
            Self::FailedTerminal(kind) => kind.clone(),
            Self::Error { status, code } => format!(
                "error {} {}",
                status.map_or("-".into(), |s| s.to_string()),
                code.as_deref().unwrap_or("-")
            ),
            Self::Broken(how) | Self::Abandoned(how) => how.clone(),
            Self::Timeout => "timeout".into(),
        }
    }
}

/// Counts over many responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Responses (turns) attempted.
    pub responses: u64,
    /// Ended with `response.completed`.
    pub completed: u64,
    /// Ended with one `error` event.
    pub error_events: u64,
    /// Ended with `response.failed` / `response.incomplete`.
    pub failed_terminals: u64,
    /// Transport ended (or was refused) before a terminal.
    pub broken: u64,
    /// No event within the deadline.
    pub timeouts: u64,
    /// Given up by the client itself, by design (a fault row's misbehaving clients).
    pub abandoned: u64,
    /// Events received.
    pub events: u64,
    /// Sequence numbers never received (in responses that reached a terminal).
    pub lost: u64,
    /// Sequence numbers received twice.
    pub duplicated: u64,
    /// Sequence numbers received after a higher one.
    pub reordered: u64,
    /// Stream events without a `sequence_number`.
    pub unnumbered: u64,
    /// Events of another response, socket or lane.
    pub misrouted: u64,
    /// Events after the response's terminal.
    pub after_terminal: u64,
    /// Responses with more than one terminal.
    pub multiple_terminals: u64,
    /// `error` events on a socket that belong to no response in flight (e.g. upstream's
    /// connection-limit error on an idle socket): told apart, not a violation.
    pub unsolicited_errors: u64,
    /// Outcome reasons other than `completed`, by label.
    pub reasons: BTreeMap<String, u64>,
}

impl Counts {
    /// Adds another set of counts.
    pub fn add(&mut self, other: &Self) {
        self.responses += other.responses;
        self.completed += other.completed;
        self.error_events += other.error_events;
        self.failed_terminals += other.failed_terminals;
        self.broken += other.broken;
        self.timeouts += other.timeouts;
        self.abandoned += other.abandoned;
        self.events += other.events;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.unnumbered += other.unnumbered;
        self.misrouted += other.misrouted;
        self.after_terminal += other.after_terminal;
        self.multiple_terminals += other.multiple_terminals;
        self.unsolicited_errors += other.unsolicited_errors;
        for (reason, n) in &other.reasons {
            self.reason(reason, *n);
        }
    }

    /// Integrity violations (everything but outcomes).
    pub fn violations(&self) -> u64 {
        self.lost
            + self.duplicated
            + self.reordered
            + self.unnumbered
            + self.misrouted
            + self.after_terminal
            + self.multiple_terminals
    }

    /// Responses that did not complete.
    pub fn not_completed(&self) -> u64 {
        self.responses - self.completed
    }

    /// Counts one outcome.
    pub fn outcome(&mut self, outcome: &Outcome) {
        self.responses += 1;
        match outcome {
            Outcome::Completed => self.completed += 1,
            Outcome::FailedTerminal(_) => self.failed_terminals += 1,
            Outcome::Error { .. } => self.error_events += 1,
            Outcome::Broken(_) => self.broken += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Abandoned(_) => self.abandoned += 1,
        }
        if *outcome != Outcome::Completed {
            self.reason(&outcome.reason(), 1);
        }
    }

    /// Counts an `error` event that answered no request of this client.
    pub fn unsolicited(&mut self, event: &Value) {
        self.events += 1;
        self.unsolicited_errors += 1;
        let code = event["error"]["code"].as_str().unwrap_or("-");
        self.reason(&format!("unsolicited error {code}"), 1);
    }

    fn reason(&mut self, reason: &str, n: u64) {
        let key = if self.reasons.len() < MAX_REASONS || self.reasons.contains_key(reason) {
            reason.to_owned()
        } else {
            "other".to_owned()
        };
        *self.reasons.entry(key).or_default() += n;
    }
}

/// One response being followed (see the module docs).
#[derive(Debug)]
pub struct ResponseCheck {
    tag: String,
    lane: Option<String>,
    sequence: SequenceChecker,
    created: bool,
    terminals: u32,
    items: HashSet<String>,
    counts: Counts,
}

impl ResponseCheck {
    /// Follows the response created with `tag` on `lane` (`None`: the default lane).
    pub fn new(tag: String, lane: Option<String>) -> Self {
        Self {
            tag,
            lane,
            sequence: SequenceChecker::new(),
            created: false,
            terminals: 0,
            items: HashSet::new(),
            counts: Counts::default(),
        }
    }

    /// The tag this response was created with.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Whether `response.created` (or an error in its place) has arrived: until then, events on
    /// its lane that are not its start belong to the response before it.
    pub fn started(&self) -> bool {
        self.created || self.terminals > 0
    }

    /// Whether the terminal has been seen.
    pub fn ended(&self) -> bool {
        self.terminals > 0
    }

    /// Feeds one event; returns the outcome when this event ends the response.
    pub fn event(&mut self, event: &Value) -> Option<Outcome> {
        self.counts.events += 1;
        let kind = event["type"].as_str().unwrap_or_default();
        if event.get("stream_id").and_then(Value::as_str) != self.lane.as_deref() {
            self.counts.misrouted += 1;
        }
        if kind == "error" {
            if self.ended() {
                self.counts.after_terminal += 1;
                return None;
            }
            self.terminals += 1;
            // WebSocket errors nest `error`; the SSE `error` event has `code` at the top.
            return Some(Outcome::Error {
                status: event["status"].as_u64(),
                code: event["error"]["code"]
                    .as_str()
                    .or_else(|| event["code"].as_str())
                    .map(str::to_owned),
            });
        }
        if self.ended() {
            self.counts.after_terminal += 1;
            return None;
        }
        self.sequence.observe(event["sequence_number"].as_u64());
        if kind == "response.created" {
            self.created = true;
        }
        if let Some(response) = event.get("response")
            && response["metadata"]["rel_tag"].as_str() != Some(self.tag.as_str())
        {
            self.counts.misrouted += 1;
        }
        if kind == "response.output_item.added"
            && let Some(id) = event["item"]["id"].as_str()
        {
            self.items.insert(id.to_owned());
        }
        if let Some(item) = event.get("item_id").and_then(Value::as_str)
            && !self.items.contains(item)
        {
            self.counts.misrouted += 1;
        }
        if is_response_terminal(kind) {
            self.terminals += 1;
            return Some(if kind == "response.completed" {
                Outcome::Completed
            } else {
                Outcome::FailedTerminal(kind.to_owned())
            });
        }
        None
    }

    /// Counts an event that arrived for this (already ended) response after its terminal.
    pub fn late_event(&mut self) {
        self.counts.events += 1;
        self.counts.after_terminal += 1;
    }

    /// Closes the check with its outcome; sequence gaps count as lost only when a terminal came.
    pub fn finish(mut self, outcome: &Outcome) -> Counts {
        if matches!(outcome, Outcome::Completed | Outcome::FailedTerminal(_)) {
            let seq = self.sequence.finish();
            self.counts.lost += seq.lost;
            self.counts.duplicated += seq.duplicated;
            self.counts.reordered += seq.reordered;
            self.counts.unnumbered += seq.unnumbered;
        }
        if self.terminals > 1 {
            self.counts.multiple_terminals += 1;
        }
        self.counts.outcome(outcome);
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream(tag: &str, lane: Option<&str>, item: &str) -> Vec<Value> {
        let mut events = vec![
            json!({"type": "response.created", "response": {"metadata": {"rel_tag": tag}}}),
            json!({"type": "response.output_item.added", "item": {"id": item}}),
            json!({"type": "response.output_text.delta", "item_id": item}),
            json!({"type": "response.output_text.delta", "item_id": item}),
            json!({"type": "response.completed", "response": {"metadata": {"rel_tag": tag}}}),
        ];
        for (n, event) in events.iter_mut().enumerate() {
            event["sequence_number"] = json!(n);
            if let Some(lane) = lane {
                event["stream_id"] = json!(lane);
            }
        }
        events
    }

    fn run(check: &mut ResponseCheck, events: &[Value]) -> Option<Outcome> {
        let mut outcome = None;
        for event in events {
            if let Some(end) = check.event(event) {
                outcome.get_or_insert(end);
            }
        }
        outcome
    }

    #[test]
    fn a_clean_response_counts_one_completion_and_nothing_else() {
        let mut check = ResponseCheck::new("s1.a.t0".into(), Some("a".into()));
        let outcome = run(&mut check, &stream("s1.a.t0", Some("a"), "msg_1")).expect("terminal");
        let counts = check.finish(&outcome);
        assert_eq!(counts.completed, 1);
        assert_eq!(counts.violations(), 0, "{counts:?}");
        assert_eq!(counts.events, 5);
    }

    #[test]
    fn another_responses_tag_item_or_lane_is_misrouted() {
        let mut check = ResponseCheck::new("s1.-.t0".into(), None);
        let mut events = stream("s1.-.t0", None, "msg_1");
        events[0]["response"]["metadata"]["rel_tag"] = json!("s2.-.t0");
        events[2]["item_id"] = json!("msg_other");
        events[3]["stream_id"] = json!("b");
        let outcome = run(&mut check, &events).expect("terminal");
        assert_eq!(check.finish(&outcome).misrouted, 3);
    }

    #[test]
    fn events_after_the_terminal_and_second_terminals_are_counted() {
        let mut check = ResponseCheck::new("t".into(), None);
        let mut events = stream("t", None, "m");
        let mut tail = events[3].clone();
        tail["sequence_number"] = json!(5);
        events.push(tail);
        events.push(json!({"type": "error", "status": 500}));
        let outcome = run(&mut check, &events).expect("terminal");
        let counts = check.finish(&outcome);
        assert_eq!(counts.after_terminal, 2, "{counts:?}");
        assert_eq!(counts.completed, 1);
    }

    #[test]
    fn gaps_count_as_lost_only_when_the_response_reached_a_terminal() {
        let mut events = stream("t", None, "m");
        events.remove(2);
        let mut check = ResponseCheck::new("t".into(), None);
        let outcome = run(&mut check, &events).expect("terminal");
        assert_eq!(check.finish(&outcome).lost, 1);
        let mut check = ResponseCheck::new("t".into(), None);
        run(&mut check, &events[..2]);
        let counts = check.finish(&Outcome::Broken("close 1006".into()));
        assert_eq!((counts.lost, counts.broken), (0, 1));
        assert_eq!(counts.reasons["close 1006"], 1);
    }

    #[test]
    fn an_error_event_is_one_clear_outcome_with_a_bounded_reason() {
        let mut check = ResponseCheck::new("t".into(), None);
        let error = json!({"type": "error", "status": 503, "error": {"code": "no_capacity"}});
        let outcome = check.event(&error).expect("error ends the response");
        assert!(check.started());
        let counts = check.finish(&outcome);
        assert_eq!(counts.error_events, 1);
        assert_eq!(counts.reasons["error 503 no_capacity"], 1);
        assert_eq!(counts.violations(), 0);
    }

    #[test]
    fn reasons_stay_bounded() {
        let mut counts = Counts::default();
        for n in 0..(MAX_REASONS as u64 + 10) {
            counts.outcome(&Outcome::Broken(format!("close {n}")));
        }
        assert_eq!(counts.reasons.len(), MAX_REASONS + 1);
        assert_eq!(counts.reasons["other"], 10);
    }
}
