//! The suite's one trace format, written by every scripted driver, and the timer loop that the
//! drivers of one machine with deadlines share.
//!
//! ```text
//! <- acquire_for_session s1 plain     an input the machine was handed (a `handle_*` call)
//! -> Dial c1 a1 for s1                an output it gave (a `poll_*` item, or a call's answer)
//! # the waiting session gets c1       a note: what the next lines show
//! @ +1500ms                           virtual time since the start, before the first line at it
//! s1 -> client head 200 text/event-stream
//! ```
//!
//! A driver that steps several machines (the gateway) starts each line with the machine's name
//! (`s1`, `control`); a driver of one machine leaves it out. What follows an arrow is the
//! machine's own vocabulary: for a machine with several outputs, the first word says which
//! (`client`, `upstream c1`, `control`, `event`). Notes carry no time of their own.

use std::fmt::{self, Display};
use std::ops::Deref;
use std::time::Instant;

/// A trace being written: one line per input, output or note, and a time line whenever virtual
/// time has moved since the last stamped line
pub struct Trace {
    t0: Instant,
    /// The time of the last line written (the start until a line is written later)
    shown: Instant,
    text: String,
}

/// Where a trace stood, to take back lines that turned out to say nothing ([`Trace::rewind`])
#[derive(Clone, Copy)]
pub struct Mark {
    shown: Instant,
    len: usize,
}

impl Trace {
    /// An empty trace whose times count from `t0`
    pub fn new(t0: Instant) -> Self {
        Self {
            t0,
            shown: t0,
            text: String::new(),
        }
    }

    /// The instant its times count from
    pub fn start(&self) -> Instant {
        self.t0
    }

    /// `<- {what}`: an input handed to the machine at `now`
    pub fn input(&mut self, now: Instant, what: impl Display) {
        self.line(now, None, "<-", what);
    }

    /// `-> {what}`: an output the machine gave at `now`
    pub fn output(&mut self, now: Instant, what: impl Display) {
        self.line(now, None, "->", what);
    }

    /// `{who} <- {what}`: an input handed to machine `who` of several
    pub fn input_to(&mut self, now: Instant, who: impl Display, what: impl Display) {
        self.line(now, Some(&who), "<-", what);
    }

    /// `{who} -> {what}`: an output machine `who` of several gave
    pub fn output_of(&mut self, now: Instant, who: impl Display, what: impl Display) {
        self.line(now, Some(&who), "->", what);
    }

    /// `# {text}`: a note on what the next lines show (no time line of its own)
    pub fn note(&mut self, text: impl Display) {
        self.text.push_str(&format!("# {text}\n"));
    }

    /// Another trace's lines, appended as they are (their times count from their own start)
    pub fn append(&mut self, other: &Self) {
        self.text.push_str(&other.text);
    }

    /// Where the trace stands now
    pub fn mark(&self) -> Mark {
        Mark {
            shown: self.shown,
            len: self.text.len(),
        }
    }

    /// Takes back every line written since `mark`
    pub fn rewind(&mut self, mark: Mark) {
        self.shown = mark.shown;
        self.text.truncate(mark.len);
    }

    fn line(&mut self, now: Instant, who: Option<&dyn Display>, arrow: &str, what: impl Display) {
        if now != self.shown {
            let ms = now.saturating_duration_since(self.t0).as_millis();
            self.text.push_str(&format!("@ +{ms}ms\n"));
            self.shown = now;
        }
        if let Some(who) = who {
            self.text.push_str(&format!("{who} "));
        }
        self.text.push_str(&format!("{arrow} {what}\n"));
    }
}

impl Deref for Trace {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Traces one after another, each under a note naming it
pub fn sections<'a>(parts: impl IntoIterator<Item = (&'a str, &'a Trace)>) -> String {
    parts
        .into_iter()
        .map(|(name, trace)| format!("# {name}\n{trace}"))
        .collect()
}

/// A driver of one machine in virtual time, as [`advance_to`] steps it
pub trait Clocked {
    /// The driver's virtual time
    fn now_mut(&mut self) -> &mut Instant;
    /// The machine's next deadline (its `poll_timeout`)
    fn next_deadline(&self) -> Option<Instant>;
    /// The machine handles its timeout at the current time; the driver traces it and takes
    /// every output
    fn fire(&mut self);
}

/// Moves virtual time to `target`, firing every deadline on the way in order (a deadline
/// already past fires at the current time)
pub fn advance_to(driver: &mut impl Clocked, target: Instant) {
    assert!(target >= *driver.now_mut(), "virtual time never goes back");
    while let Some(due) = driver.next_deadline().filter(|t| *t <= target) {
        let now = driver.now_mut();
        *now = (*now).max(due);
        driver.fire();
    }
    *driver.now_mut() = target;
}
