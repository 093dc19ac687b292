//! One create's life as one machine, [`Turn`], driven alike by a WebSocket
//! [`Session`](crate::session::Session) (many turns) and an [`HttpTurn`](crate::http::HttpTurn)
//! (one). Its state is private; only the named transitions below move it, each
//! debug-asserting the edge it takes.

use std::time::Instant;

use bytes::Bytes;

use super::{Audience, ResponseBind, ResponseReport, Slot, SlotRequest, TurnFacts};
use crate::config::SchedulerConfig;
use crate::conn::Ended;
use crate::event::ServerEventKind;
use crate::rng::Jitter;
use crate::scheduler::{FailureKind, GiveUpReason, Pinning, RetryDecision, RetryState};
use crate::{AccountId, ConnId, TurnId};

/// A create from its acceptance to its end; `C` is what its holder keeps of the client's
/// create until nothing can send it again (a session's frame and its terms; nothing for an
/// HTTP turn, whose request outlives its attempts)
#[derive(Clone, Debug)]
pub(crate) struct Turn<C> {
    id: TurnId,
    state: State<C>,
    /// Retry and failover bookkeeping, from the holder's first attempt on
    retry: Option<RetryState>,
}

/// Where a create stands
///
/// ```text
///  new ─▶ Held ─send─▶ Sent ─reached_client─▶ Relaying
///          ▲  ▲          │                       ▲
///          │  │          │ must_move             │
///          │  │          ▼                       │
///          │  └─ moved ─ Moving ─reached_client──┘
///          │
///          └── hold_again: a failed attempt (Held, Sent, Moving) is retried after its
///              back-off, keeping its slot when it retries on the same account
///
///  Held's slot: None ─ask_slot─▶ Waiting ─slot_granted─▶ Granted (only then is it sent)
///  successor (after a steer) ─▶ Relaying, holding no slot
///  withdraw: any state before Relaying ─▶ Ended (its slot wait cancelled, its slot given back)
///  end:      Sent, Moving, Relaying    ─▶ Ended (bind, report, its slot given back)
/// ```
///
/// The client leaving turns `Sent`, `Moving` and `Relaying` deaf ([`Audience::Gone`]): their
/// events are read to the terminal and go nowhere, and their report says `drained`.
#[derive(Clone, Debug)]
enum State<C> {
    /// Not (again) upstream: waits for its holder's account, conn and room, a retry's
    /// back-off, and a slot of its account
    Held {
        create: C,
        slot: Slot,
        not_before: Option<Instant>,
    },
    /// Upstream; nothing reached the client yet, so a failure may send it again
    Sent { create: C, up: Upstream },
    /// Upstream's connection limit answered it before any event: it moves to a fresh conn,
    /// keeping its slot, once its end on the old one is read
    Moving { create: C, up: Upstream },
    /// Its events reach the client (or nobody, once it left) until its end; it holds its slot
    /// (none for a successor after a steer)
    Relaying { up: Upstream, slot: Slot },
    /// Reported, withdrawn or refused; its slot given back
    Ended,
}

/// A create on its way upstream
#[derive(Clone, Debug)]
struct Upstream {
    conn: ConnId,
    facts: TurnFacts,
    audience: Audience,
}

/// A create that ended upstream: its bind, its report, and the slot it gives back
pub(crate) struct Settled {
    pub(crate) bind: Option<ResponseBind>,
    pub(crate) report: ResponseReport,
    pub(crate) release: Option<SlotRequest>,
}

impl<C> Turn<C> {
    /// A create accepted: `Held`
    pub(crate) fn new(id: TurnId, create: C) -> Self {
        let (slot, not_before) = (Slot::None, None);
        let state = State::Held {
            create,
            slot,
            not_before,
        };
        let retry = None;
        Self { id, state, retry }
    }

    /// An automatic successor after a steer on `conn`: relayed at once, holding no slot
    pub(crate) fn successor(
        id: TurnId,
        conn: ConnId,
        facts: TurnFacts,
        audience: Audience,
    ) -> Self {
        let up = Upstream {
            conn,
            facts,
            audience,
        };
        let slot = Slot::None;
        let state = State::Relaying { up, slot };
        let retry = None;
        Self { id, state, retry }
    }

    /// Its handle (its slot waits and its response on the conn)
    pub(crate) fn id(&self) -> TurnId {
        self.id
    }

    /// A new handle for its next attempt (an HTTP turn's attempts are told apart)
    pub(crate) fn renumber(&mut self, id: TurnId) {
        debug_assert!(
            matches!(self.state, State::Held { .. }),
            "renumbered upstream"
        );
        self.id = id;
    }

    /// The client's create, while something may still send it
    pub(crate) fn create(&self) -> Option<&C> {
        match &self.state {
            State::Held { create, .. }
            | State::Sent { create, .. }
            | State::Moving { create, .. } => Some(create),
            State::Relaying { .. } | State::Ended => None,
        }
    }

    /// The client's create, to amend before it goes upstream
    pub(crate) fn create_mut(&mut self) -> Option<&mut C> {
        match &mut self.state {
            State::Held { create, .. } => Some(create),
            _ => None,
        }
    }

    /// Its slot, as its holder asks about it
    pub(crate) fn slot(&self) -> Slot {
        match &self.state {
            State::Held { slot, .. } | State::Relaying { slot, .. } => *slot,
            State::Sent { up, .. } | State::Moving { up, .. } => Slot::Granted(up.facts.account),
            State::Ended => Slot::None,
        }
    }

    /// A retry's back-off: not to be sent before then
    pub(crate) fn not_before(&self) -> Option<Instant> {
        match &self.state {
            State::Held { not_before, .. } => *not_before,
            _ => None,
        }
    }

    /// The conn it is on, once sent
    pub(crate) fn conn(&self) -> Option<ConnId> {
        self.upstream().map(|up| up.conn)
    }

    /// What its report carries, once sent
    pub(crate) fn facts(&self) -> Option<&TurnFacts> {
        self.upstream().map(|up| &up.facts)
    }

    /// Sent and nothing reached the client: a failure may still send it again
    pub(crate) fn is_retriable(&self) -> bool {
        matches!(self.state, State::Sent { .. } | State::Moving { .. })
    }

    /// Upstream and not ended
    pub(crate) fn is_open(&self) -> bool {
        self.upstream().is_some()
    }

    /// Its retry bookkeeping, started at `now` on `account` by the first attempt that asks
    pub(crate) fn retry_state(
        &mut self,
        now: Instant,
        account: AccountId,
        pinning: Pinning,
        cfg: &SchedulerConfig,
    ) -> &mut RetryState {
        self.retry
            .get_or_insert_with(|| RetryState::new(now, account, pinning, cfg))
    }

    /// Its retry bookkeeping, if an attempt started it
    pub(crate) fn retry(&mut self) -> Option<&mut RetryState> {
        self.retry.as_mut()
    }

    /// Held: its slot None → Waiting; the request for a slot of `account`
    pub(crate) fn ask_slot(&mut self, account: AccountId, max_concurrency: u32) -> SlotRequest {
        let State::Held { slot, .. } = &mut self.state else {
            unreachable!("a slot is asked for a held create")
        };
        debug_assert_eq!(*slot, Slot::None, "a slot asked twice");
        *slot = Slot::Waiting(account);
        let turn = self.id;
        SlotRequest::Acquire {
            turn,
            account,
            max_concurrency,
        }
    }

    /// Held: its slot Waiting → Granted; false (nothing moves) when it was not waiting for
    /// this grant: the holder gives the slot straight back
    pub(crate) fn slot_granted(&mut self, turn: TurnId) -> bool {
        if let State::Held { slot, .. } = &mut self.state
            && let Slot::Waiting(account) = *slot
            && turn == self.id
        {
            *slot = Slot::Granted(account);
            return true;
        }
        false
    }

    /// Held (its slot granted) → Sent on `conn` (the holder writes the frame)
    pub(crate) fn send(&mut self, conn: ConnId, facts: TurnFacts) {
        let State::Held {
            create,
            slot: Slot::Granted(_),
            ..
        } = self.take_state()
        else {
            unreachable!("only a create holding a slot is sent")
        };
        let audience = Audience::Client;
        let up = Upstream {
            conn,
            facts,
            audience,
        };
        self.state = State::Sent { create, up };
    }

    /// Sent | Moving → Relaying: an event reached the client, so it will not be sent again
    pub(crate) fn reached_client(&mut self) {
        // Every relayed event calls this: once relaying, the state is not moved out and back.
        if matches!(self.state, State::Relaying { .. }) {
            return;
        }
        self.state = match self.take_state() {
            State::Sent { up, .. } | State::Moving { up, .. } => {
                let slot = Slot::Granted(up.facts.account);
                State::Relaying { up, slot }
            }
            _ => unreachable!("only a sent create reaches its client"),
        };
    }

    /// Sent → Moving: upstream's connection limit answered it before any event
    pub(crate) fn must_move(&mut self) {
        self.state = match self.take_state() {
            State::Sent { create, up } | State::Moving { create, up } => {
                State::Moving { create, up }
            }
            _ => unreachable!("only a sent create moves"),
        };
    }

    /// Moving → Held once its end on the old conn is read (its slot kept, no back-off);
    /// false (nothing moves) when it was not moving
    pub(crate) fn moved(&mut self, now: Instant) -> bool {
        let moving = matches!(self.state, State::Moving { .. });
        if moving {
            self.hold_again(now, true);
        }
        moving
    }

    /// The client left: an open response's events go nowhere from now on (seed fix 11)
    pub(crate) fn client_left(&mut self) {
        if let State::Sent { up, .. } | State::Moving { up, .. } | State::Relaying { up, .. } =
            &mut self.state
        {
            up.audience = Audience::Gone;
        }
    }

    /// The frame its upstream event becomes for the client, or `None` when nobody reads it
    pub(crate) fn relay(&self, kind: ServerEventKind, frame: Bytes) -> Option<Bytes> {
        let up = self.upstream()?;
        super::relay(up.facts.models.as_ref(), kind, frame, up.audience)
    }

    /// An attempt failed before anything reached the client: the retry rules decide (nothing
    /// moves; on a retry the holder calls [`hold_again`](Self::hold_again))
    pub(crate) fn attempt_failed(
        &mut self,
        now: Instant,
        failure: FailureKind,
        jitter: &mut Jitter,
    ) -> RetryDecision {
        match self.retry.as_mut() {
            Some(retry) => retry.on_failure(now, failure, false, jitter),
            None => RetryDecision::GiveUp(GiveUpReason::NotRetryable),
        }
    }

    /// Any state before Relaying (Moving too) → Held until `at`, keeping a slot it holds when
    /// `keep_slot` (a retry on the same account); the request that gives it back otherwise
    pub(crate) fn hold_again(&mut self, at: Instant, keep_slot: bool) -> Option<SlotRequest> {
        let (slot, release) = match self.slot() {
            Slot::Granted(account) if keep_slot => (Slot::Granted(account), None),
            Slot::Granted(account) => (Slot::None, Some(SlotRequest::Release { account })),
            Slot::Waiting(_) | Slot::None => (Slot::None, None),
        };
        let create = match self.take_state() {
            State::Held { create, .. }
            | State::Sent { create, .. }
            | State::Moving { create, .. } => create,
            _ => unreachable!("sent again after its client saw it"),
        };
        let not_before = Some(at);
        self.state = State::Held {
            create,
            slot,
            not_before,
        };
        release
    }

    /// Sent, Moving or Relaying → Ended: upstream ended it. Its bind (when upstream finished
    /// it with an id; `store` defaults to `default_store`), its report (`drained` when its
    /// client had left) and its slot back. None (nothing moves) when it was not upstream.
    pub(crate) fn end(
        &mut self,
        now: Instant,
        ended: Ended,
        default_store: bool,
    ) -> Option<Settled> {
        let release = self.give_back();
        let up = match self.take_state() {
            State::Sent { up, .. } | State::Moving { up, .. } | State::Relaying { up, .. } => up,
            other => {
                self.state = other;
                return None;
            }
        };
        let drained = up.audience == Audience::Gone;
        // A retry sends it again, so the notes now are the ones it was sent after.
        let retries = self.retry.as_ref().map(|r| r.notes().to_vec());
        let (conn, retries) = (up.conn, retries.unwrap_or_default());
        let (bind, report) = up
            .facts
            .settle(now, conn, ended, default_store, drained, retries);
        Some(Settled {
            bind,
            report,
            release,
        })
    }

    /// Any state → Ended without a response (refused, dropped, given up): the request that
    /// gives back what it holds of a slot
    pub(crate) fn withdraw(&mut self) -> Option<SlotRequest> {
        let request = self.give_back();
        self.state = State::Ended;
        request
    }

    /// The request that gives back what it holds of a slot: a wait is cancelled, a slot
    /// released
    fn give_back(&self) -> Option<SlotRequest> {
        match self.slot() {
            Slot::Waiting(account) => Some(SlotRequest::CancelWait {
                turn: self.id,
                account,
            }),
            Slot::Granted(account) => Some(SlotRequest::Release { account }),
            Slot::None => None,
        }
    }

    fn upstream(&self) -> Option<&Upstream> {
        match &self.state {
            State::Sent { up, .. } | State::Moving { up, .. } | State::Relaying { up, .. } => {
                Some(up)
            }
            _ => None,
        }
    }

    fn take_state(&mut self) -> State<C> {
        std::mem::replace(&mut self.state, State::Ended)
    }
}
