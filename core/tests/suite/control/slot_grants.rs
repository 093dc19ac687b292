//! Concurrency slots the control plane grants are held by their holder until it gives them
//! back or closes: a grant its holder never read (its task ended while the grant was on the
//! way) is freed by the holder's close, and one it gave back is not freed twice. A create that
//! has to queue for a slot is reported (`ControlEvent::SlotWaiting`, the driver's log line).

use std::sync::Arc;
use std::time::Instant;

use wsv2_core::control::{AccountSpec, Control, ControlEvent, ControlOutput};
use wsv2_core::http::{HttpInput, HttpTurnRequest};
use wsv2_core::resolver::{AccountProtocol, AuthType};
use wsv2_core::session::{SessionInput, SessionRequest};
use wsv2_core::turn::{Answer, SessionInfo, SlotRequest};
use wsv2_core::{AccountId, Config, SessionId, TurnId};

const ACCOUNT: AccountId = AccountId(1);

/// The control plane over one account with a single concurrency slot
fn control(now: Instant) -> Control {
    let mut cfg = Config::default();
    cfg.pool.min_idle_per_account = 0;
    let spec = AccountSpec {
        id: ACCOUNT,
        name: "acct1".into(),
        protocol: AccountProtocol {
            auth_type: AuthType::ApiKey,
            force_http: false,
        },
        concurrency: 1,
        priority: 0,
        model_map: Arc::default(),
    };
    let mut control = Control::new(Arc::new(cfg), vec![spec], 7, now);
    grants(&mut control);
    control
}

/// Slot grants among the outputs since the last call, in order (everything else is dropped)
fn grants(control: &mut Control) -> Vec<(SessionId, TurnId)> {
    std::iter::from_fn(|| control.poll_output())
        .filter_map(|out| match out {
            ControlOutput::Session(id, SessionInput::Answer(Answer::SlotGranted(turn)))
            | ControlOutput::Http(id, HttpInput::Answer(Answer::SlotGranted(turn))) => {
                Some((id, turn))
            }
            _ => None,
        })
        .collect()
}

fn held(control: &Control, now: Instant) -> u32 {
    control
        .account_view(ACCOUNT, now)
        .expect("account")
        .unfinished
}

/// One holder kind, driven through its own command type
#[derive(Clone, Copy, Debug)]
enum Kind {
    Session,
    Http,
}

impl Kind {
    fn open(self, control: &mut Control, now: Instant, id: SessionId) {
        match self {
            Self::Session => control.open_session(id, SessionInfo::default()),
            Self::Http => {
                control.handle_http_request(now, id, HttpTurnRequest::Open(SessionInfo::default()))
            }
        }
    }

    fn slot(self, control: &mut Control, now: Instant, id: SessionId, request: SlotRequest) {
        match self {
            Self::Session => control.handle_session_request(now, id, SessionRequest::Slot(request)),
            Self::Http => control.handle_http_request(now, id, HttpTurnRequest::Slot(request)),
        }
    }

    fn close(self, control: &mut Control, now: Instant, id: SessionId) {
        match self {
            Self::Session => control.close_session(now, id),
            Self::Http => control.handle_http_request(now, id, HttpTurnRequest::Close),
        }
    }
}

fn acquire(turn: u64) -> SlotRequest {
    SlotRequest::Acquire {
        turn: TurnId(turn),
        account: ACCOUNT,
        max_concurrency: 1,
    }
}

const RELEASE: SlotRequest = SlotRequest::Release { account: ACCOUNT };

#[test]
fn a_slot_granted_to_a_holder_that_ended_before_reading_it_is_freed_by_its_close() {
    for kind in [Kind::Session, Kind::Http] {
        let now = Instant::now();
        let mut control = control(now);
        let (first, late, next) = (SessionId(1), SessionId(2), SessionId(3));
        for id in [first, late, next] {
            kind.open(&mut control, now, id);
        }
        kind.slot(&mut control, now, first, acquire(1));
        assert_eq!(grants(&mut control), [(first, TurnId(1))], "{kind:?}");
        kind.slot(&mut control, now, late, acquire(1));
        assert_eq!(grants(&mut control), [], "{kind:?}: the one slot is taken");
        // The first response ends; its slot goes to the waiting create, whose task ended
        // meanwhile (its client left): the grant is never read (dropped here).
        kind.slot(&mut control, now, first, RELEASE);
        assert_eq!(grants(&mut control), [(late, TurnId(1))], "{kind:?}");
        // The ended machine, not knowing, cancels a wait that is over, then the task closes.
        let cancel = SlotRequest::CancelWait {
            turn: TurnId(1),
            account: ACCOUNT,
        };
        kind.slot(&mut control, now, late, cancel);
        kind.close(&mut control, now, late);
        assert_eq!(held(&control, now), 0, "{kind:?}: nobody holds the slot");
        kind.slot(&mut control, now, next, acquire(1));
        assert_eq!(
            grants(&mut control),
            [(next, TurnId(1))],
            "{kind:?}: the next create gets it"
        );
    }
}

#[test]
fn a_slot_its_holder_gave_back_is_not_freed_again_by_its_close() {
    for kind in [Kind::Session, Kind::Http] {
        let now = Instant::now();
        let mut control = control(now);
        let (done, holding, waiting) = (SessionId(1), SessionId(2), SessionId(3));
        for id in [done, holding, waiting] {
            kind.open(&mut control, now, id);
        }
        kind.slot(&mut control, now, done, acquire(1));
        kind.slot(&mut control, now, done, RELEASE);
        kind.slot(&mut control, now, holding, acquire(1));
        assert_eq!(
            grants(&mut control),
            [(done, TurnId(1)), (holding, TurnId(1))],
            "{kind:?}"
        );
        kind.close(&mut control, now, done);
        assert_eq!(held(&control, now), 1, "{kind:?}: the slot stays held");
        kind.slot(&mut control, now, waiting, acquire(1));
        assert_eq!(grants(&mut control), [], "{kind:?}: the third create waits");
    }
}

#[test]
fn a_slot_request_of_a_holder_that_closed_takes_nothing() {
    let now = Instant::now();
    let mut control = control(now);
    let (gone, next) = (SessionId(1), SessionId(2));
    Kind::Session.open(&mut control, now, next);
    Kind::Session.slot(&mut control, now, gone, acquire(1));
    assert_eq!(grants(&mut control), [], "no grant for an unknown holder");
    assert_eq!(held(&control, now), 0, "and no slot taken for it");
    Kind::Session.slot(&mut control, now, next, acquire(1));
    assert_eq!(grants(&mut control), [(next, TurnId(1))]);
}

#[test]
fn a_create_that_has_to_queue_for_a_slot_is_reported_and_one_granted_at_once_is_not() {
    for kind in [Kind::Session, Kind::Http] {
        let now = Instant::now();
        let mut control = control(now);
        let (first, second) = (SessionId(1), SessionId(2));
        for id in [first, second] {
            kind.open(&mut control, now, id);
        }
        let waits = |control: &mut Control| -> Vec<ControlEvent> {
            std::iter::from_fn(|| control.poll_output())
                .filter_map(|out| match out {
                    ControlOutput::Event(wait @ ControlEvent::SlotWaiting { .. }) => Some(wait),
                    _ => None,
                })
                .collect()
        };
        kind.slot(&mut control, now, first, acquire(1));
        assert_eq!(
            waits(&mut control),
            [],
            "{kind:?}: the free slot is granted at once"
        );
        kind.slot(&mut control, now, second, acquire(1));
        let queued = ControlEvent::SlotWaiting {
            session: second,
            turn: TurnId(1),
            account: ACCOUNT,
            max_concurrency: 1,
        };
        assert_eq!(
            waits(&mut control),
            [queued],
            "{kind:?}: the one slot is taken"
        );
    }
}
