//! Faults switched on and off at run time for every connection of a mock (the reliability suite's
//! fault matrix): through [`crate::MockHandle::set_fault`] in-process, or the admin endpoint of
//! `wsv2-mock-upstream --admin ADDR` (see [`crate::admin`]).
//!
//! ```text
//!   none ──set_fault(f)──▶ f ──set_fault(None)──▶ none
//! ```
//!
//! A switched fault applies to every `response.create` (WebSocket or POST) that names no
//! `metadata.mock_fault` of its own, from the moment it is set; responses already streaming keep
//! going. `Blackhole` also acts on sockets: new TCP connections are accepted and never answered,
//! and open WebSocket connections stop answering pings; responses created meanwhile stay silent
//! until it is switched off, then stream (packets a real blackhole dropped arrive late).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::request::Fault;

/// A fault every later response gets (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeFault {
    /// TCP closed without a close frame after `response.created` and 2 deltas (WebSocket); the
    /// SSE body is cut at the same point.
    DropMidStream,
    /// An `error` event (status 429, rate-limit headers) in place of each response.
    Error429,
    /// An `error` event (status 500) in place of each response.
    Error500,
    /// Nothing answers: creates get no event, pings no pong, new connections no handshake.
    Blackhole,
    /// Each response waits this long before `response.created`.
    Slow(Duration),
}

impl RuntimeFault {
    /// Parses an admin name: `drop_mid_stream`, `error_429`, `error_500`, `blackhole`, `slow`
    /// (`slow_ms` sets its delay, default 2 s).
    pub fn parse(name: &str, slow_ms: Option<u64>) -> Option<Self> {
        Some(match name {
            "drop_mid_stream" => Self::DropMidStream,
            "error_429" => Self::Error429,
            "error_500" => Self::Error500,
            "blackhole" => Self::Blackhole,
            "slow" => Self::Slow(Duration::from_millis(slow_ms.unwrap_or(2000))),
            _ => return None,
        })
    }

    /// The admin name of this fault.
    pub fn name(self) -> &'static str {
        match self {
            Self::DropMidStream => "drop_mid_stream",
            Self::Error429 => "error_429",
            Self::Error500 => "error_500",
            Self::Blackhole => "blackhole",
            Self::Slow(_) => "slow",
        }
    }

    /// The per-response fault this runtime fault stands for, with its delay.
    pub(crate) fn per_response(self) -> (Fault, Option<Duration>) {
        match self {
            Self::DropMidStream => (Fault::DropMidStream, None),
            Self::Error429 => (Fault::Error429, None),
            Self::Error500 => (Fault::Error500, None),
            Self::Blackhole => (Fault::Blackhole, None),
            Self::Slow(delay) => (Fault::SlowFirstEvent, Some(delay)),
        }
    }
}

/// The switches of one mock instance and the connection counters the admin endpoint reports.
#[derive(Debug)]
pub(crate) struct Switches {
    /// Bumped to cut every open WebSocket connection at once (no close frame).
    kick: watch::Sender<u64>,
    /// Bumped to make every connection stopped for good by `stop_reading` read again.
    resume: watch::Sender<u64>,
    fault: watch::Sender<Option<RuntimeFault>>,
    /// Mirrors `fault == Some(Blackhole)` for the hot paths (accept, pong filter).
    blackhole: AtomicBool,
    /// Every connection's pings go unanswered while set (sockets otherwise keep working).
    pongs_off: AtomicBool,
    /// Pings received over every WebSocket connection so far (answered or not).
    pings: watch::Sender<u64>,
    /// WebSocket connections open now.
    pub(crate) open_ws: AtomicU64,
    /// TCP connections held silent by the blackhole now.
    pub(crate) held_silent: AtomicU64,
    /// Upgrades being answered now (inside the handshake delay).
    handshaking: AtomicU64,
    /// The most upgrades in flight at once since start (or the last reset): the client's dials
    /// in flight as the upstream sees them.
    handshaking_max: AtomicU64,
}

impl Default for Switches {
    fn default() -> Self {
        Self {
            kick: watch::channel(0).0,
            resume: watch::channel(0).0,
            fault: watch::channel(None).0,
            blackhole: AtomicBool::default(),
            pongs_off: AtomicBool::default(),
            pings: watch::channel(0).0,
            open_ws: AtomicU64::default(),
            held_silent: AtomicU64::default(),
            handshaking: AtomicU64::default(),
            handshaking_max: AtomicU64::default(),
        }
    }
}

impl Switches {
    /// Cuts every WebSocket connection open now (each drops its TCP without a close frame).
    pub(crate) fn drop_all(&self) {
        self.kick.send_modify(|n| *n += 1);
    }

    /// What a connection watches for [`Switches::drop_all`].
    pub(crate) fn kicks(&self) -> watch::Receiver<u64> {
        self.kick.subscribe()
    }

    /// Makes every connection that a `stop_reading` fault without `mock_delay_ms` stopped read
    /// again.
    pub(crate) fn resume_reading(&self) {
        self.resume.send_modify(|n| *n += 1);
    }

    /// What a connection watches for [`Switches::resume_reading`].
    pub(crate) fn resumes(&self) -> watch::Receiver<u64> {
        self.resume.subscribe()
    }

    pub(crate) fn set(&self, fault: Option<RuntimeFault>) {
        self.fault.send_replace(fault);
        self.blackhole
            .store(fault == Some(RuntimeFault::Blackhole), Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> Option<RuntimeFault> {
        *self.fault.borrow()
    }

    /// Watches the switched fault (a blackholed response waits for the blackhole to end).
    pub(crate) fn watch(&self) -> watch::Receiver<Option<RuntimeFault>> {
        self.fault.subscribe()
    }

    pub(crate) fn blackhole(&self) -> bool {
        self.blackhole.load(Ordering::Relaxed)
    }

    /// Stops (`false`) or resumes answering pings on every connection.
    pub(crate) fn set_pongs(&self, on: bool) {
        self.pongs_off.store(!on, Ordering::SeqCst);
    }

    /// Whether pings go unanswered on every connection now (pongs switched off, or a blackhole).
    pub(crate) fn drops_pongs(&self) -> bool {
        self.pongs_off.load(Ordering::Relaxed) || self.blackhole()
    }

    /// Counts one ping received on some connection.
    pub(crate) fn ping_received(&self) {
        self.pings.send_modify(|n| *n += 1);
    }

    /// What a test watches to wait for pings.
    pub(crate) fn pings(&self) -> watch::Receiver<u64> {
        self.pings.subscribe()
    }

    /// Counts one upgrade in flight until the guard drops; raises the high-water mark.
    pub(crate) fn handshake(&self) -> HandshakeGuard<'_> {
        let now = self.handshaking.fetch_add(1, Ordering::SeqCst) + 1;
        self.handshaking_max.fetch_max(now, Ordering::SeqCst);
        HandshakeGuard(&self.handshaking)
    }

    /// The high-water mark of upgrades in flight.
    pub(crate) fn handshaking_max(&self) -> u64 {
        self.handshaking_max.load(Ordering::SeqCst)
    }

    /// Restarts the high-water mark from the upgrades in flight now.
    pub(crate) fn reset_handshaking_max(&self) {
        self.handshaking_max
            .store(self.handshaking.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// One upgrade in flight (see [`Switches::handshake`]).
pub(crate) struct HandshakeGuard<'a>(&'a AtomicU64);

impl Drop for HandshakeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_itself() {
        for name in [
            "drop_mid_stream",
            "error_429",
            "error_500",
            "blackhole",
            "slow",
        ] {
            assert_eq!(
                RuntimeFault::parse(name, None).map(RuntimeFault::name),
                Some(name)
            );
        }
        assert_eq!(
            RuntimeFault::parse("slow", Some(50)),
            Some(RuntimeFault::Slow(Duration::from_millis(50)))
        );
        assert_eq!(RuntimeFault::parse("stall", None), None);
    }

    #[test]
    fn the_blackhole_flag_follows_the_fault() {
        let switches = Switches::default();
        switches.set(Some(RuntimeFault::Blackhole));
        assert!(switches.blackhole());
        switches.set(Some(RuntimeFault::Error500));
        assert!(!switches.blackhole());
        assert_eq!(switches.get(), Some(RuntimeFault::Error500));
        switches.set(None);
        assert_eq!(switches.get(), None);
    }

    #[test]
    fn the_handshake_high_water_mark_counts_overlapping_upgrades() {
        let switches = Switches::default();
        let a = switches.handshake();
        let b = switches.handshake();
        drop(a);
        let c = switches.handshake();
        assert_eq!(switches.handshaking_max(), 2);
        drop((b, c));
        switches.reset_handshaking_max();
        assert_eq!(switches.handshaking_max(), 0);
    }
}
