//! The session's own states — its lifecycle, its way to an account and a conn, its shutdown,
//! its client's write buffer — and the named transitions that are the only places they move.
//! (Each create's own life is a [`Turn`](crate::turn::Turn).)

use super::{Admission, Session, SessionRequest};

/// Lifecycle of a client session
///
/// ```text
///   AwaitingFirst ──first client message──▶ Active ──client gone, responses open──▶ Draining
///        │                                   │                                      │ a response
///        │ first_message_timeout (1008)      │ inter_turn_idle_timeout (1000),      │ stalled:
///        │                                   │ client gone with nothing open,       │ { stalled }
///        │                                   │ upstream lost after output (1011)    │ all terminal,
///        ▼                                   ▼                                      ▼ drain_timeout
///     Finished ◀──────────────────────────────────────────────────────────────── Finished
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Upgraded, no client message yet
    AwaitingFirst,
    /// Serving turns
    Active,
    /// The client left; reading upstream until every open response is terminal
    Draining {
        /// A response stalled: the drain will not finish cleanly
        stalled: bool,
    },
    /// Over: conns released, nothing more to do
    Finished,
}

/// How the session stands with its account (its held creates need one, then a conn of it)
///
/// ```text
///   Unscheduled ──Schedule──▶ Scheduling ──admission──▶ Admitted ──Acquire──▶ Acquiring
///        ▲  ▲                     │ refused                 ▲                    │ lease,
///        │  └─────────────────────┘                         └────────────────────┘ refused
///        └──── failover: a lost or failed attempt, a slow dial (Admitted, Acquiring)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// No account
    Unscheduled,
    /// Asked the scheduler for one
    Scheduling,
    /// The account every turn of the session is sent on
    Admitted(Admission),
    /// The account, and a conn asked of its pool
    Acquiring(Admission),
}

/// The gateway's shutdown, as this session sees it
///
/// ```text
///   Running ──shutdown, idle──▶ Spreading ──its instant within shutdown_close_spread──▶ CloseWhenIdle
///      └──────────────shutdown, busy (or no spread)────────────────────────────────────────┘
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shutdown {
    /// No shutdown
    Running,
    /// No new creates; the idle client is closed 1012 at its instant
    Spreading,
    /// No new creates; the client is closed 1012 as soon as nothing is in flight
    CloseWhenIdle,
}

/// The client's write buffer
///
/// ```text
///   Reading ──full──▶ Full ──blocked_client_timeout with responses open──▶ Blocked
///      ▲               │                                                    │
///      └── drained, client gone ──────────────────────────────────────────┘
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClientWrites {
    /// The client reads
    Reading,
    /// Full: upstream reads pause
    Full,
    /// Full for `blocked_client_timeout` with slots held: the control plane was told
    Blocked,
}

impl Session {
    /// AwaitingFirst | Active → Active: the client spoke
    pub(super) fn client_spoke(&mut self) {
        debug_assert!(self.takes_client_input(), "{:?} -> Active", self.phase);
        self.phase = Phase::Active;
    }

    /// → Draining: the client left with responses open
    pub(super) fn start_draining(&mut self) {
        debug_assert!(self.takes_client_input(), "{:?} -> Draining", self.phase);
        self.phase = Phase::Draining { stalled: false };
    }

    /// Draining → Draining { stalled }: a response stalled while draining
    pub(super) fn drain_stalled(&mut self) {
        debug_assert!(self.is_draining(), "{:?} -> stalled", self.phase);
        self.phase = Phase::Draining { stalled: true };
    }

    /// → Finished
    pub(super) fn enter_finished(&mut self) {
        debug_assert_ne!(self.phase, Phase::Finished, "finished twice");
        self.phase = Phase::Finished;
    }

    /// Unscheduled → Scheduling: the head create asks for an account
    pub(super) fn ask_schedule(&mut self) {
        debug_assert_eq!(self.route, Route::Unscheduled, "a second schedule");
        self.route = Route::Scheduling;
    }

    /// → Admitted (a conn still being asked for stays asked for)
    pub(super) fn admitted(&mut self, admission: Admission) {
        self.route = match self.route {
            Route::Acquiring(_) => Route::Acquiring(admission),
            Route::Unscheduled | Route::Scheduling | Route::Admitted(_) => {
                Route::Admitted(admission)
            }
        };
    }

    /// Admitted → Acquiring: the command that asks the account's pool for a conn
    pub(super) fn ask_lease(&mut self, may_move_from: Option<Vec<crate::AccountId>>) {
        let Route::Admitted(admission) = std::mem::replace(&mut self.route, Route::Unscheduled)
        else {
            unreachable!("a conn is asked for with an account")
        };
        self.requests.push_back(SessionRequest::Acquire {
            account: admission.account,
            compat: admission.compat.clone(),
            may_move_from,
        });
        self.route = Route::Acquiring(admission);
    }

    /// Acquiring → Admitted: the pool answered
    pub(super) fn lease_answered(&mut self) {
        self.route = match std::mem::replace(&mut self.route, Route::Unscheduled) {
            Route::Acquiring(admission) => Route::Admitted(admission),
            other => other,
        };
    }

    /// → Unscheduled: no account (refused), or the held creates move to another one
    pub(super) fn drop_admission(&mut self) {
        self.route = Route::Unscheduled;
    }

    /// The account chosen for the session's turns
    pub(super) fn admitted_account(&self) -> Option<&Admission> {
        match &self.route {
            Route::Admitted(a) | Route::Acquiring(a) => Some(a),
            Route::Unscheduled | Route::Scheduling => None,
        }
    }

    /// Whether the gateway is shutting down
    pub(super) fn shutting_down(&self) -> bool {
        self.shutdown != Shutdown::Running
    }

    /// Running → Spreading | CloseWhenIdle
    pub(super) fn enter_shutdown(&mut self, close_when_idle: bool) {
        debug_assert_eq!(self.shutdown, Shutdown::Running, "shut down twice");
        self.shutdown = match close_when_idle {
            true => Shutdown::CloseWhenIdle,
            false => Shutdown::Spreading,
        };
    }

    /// Spreading → CloseWhenIdle: the idle session's instant came
    pub(super) fn close_when_idle(&mut self) {
        debug_assert_eq!(
            self.shutdown,
            Shutdown::Spreading,
            "close instant without shutdown"
        );
        self.shutdown = Shutdown::CloseWhenIdle;
    }

    /// Whether the client's write buffer is full
    pub(super) fn backpressured(&self) -> bool {
        self.client_writes != ClientWrites::Reading
    }

    /// Reading → Full
    pub(super) fn client_full(&mut self) {
        debug_assert_eq!(self.client_writes, ClientWrites::Reading, "full twice");
        self.client_writes = ClientWrites::Full;
    }

    /// Full → Blocked: the control plane learns that the client blocks its account's slots
    pub(super) fn client_blocked(&mut self) {
        let Some(admission) = self.admitted_account() else {
            return;
        };
        if self.client_writes == ClientWrites::Full {
            let account = admission.account;
            self.requests.push_back(SessionRequest::ClientBlocked {
                account,
                blocked: true,
            });
            self.client_writes = ClientWrites::Blocked;
        }
    }

    /// → Reading (the buffer drained, or the client left): a blocked client unblocks its slots
    pub(super) fn client_reads(&mut self) {
        if self.client_writes == ClientWrites::Blocked
            && let Some(admission) = self.admitted_account()
        {
            let account = admission.account;
            self.requests.push_back(SessionRequest::ClientBlocked {
                account,
                blocked: false,
            });
        }
        self.client_writes = ClientWrites::Reading;
    }

    /// Whether the client is still served (it neither left nor was closed)
    pub fn takes_client_input(&self) -> bool {
        matches!(self.phase, Phase::AwaitingFirst | Phase::Active)
    }

    /// Whether the client left and open responses are read to their terminal
    pub fn is_draining(&self) -> bool {
        matches!(self.phase, Phase::Draining { .. })
    }

    /// Whether the session is over ([`TurnEvent::Finished`](crate::turn::TurnEvent::Finished)
    /// was emitted): drop it
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }
}
