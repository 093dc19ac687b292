//! Property tests over random input sequences in virtual time: every create ends in exactly one
//! outcome, dirty conns are never reusable, closed conns keep no timer, held creates stay bounded.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;

use crate::support::session::{Sim, World, create};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use serde_json::{Value, json};
use wsv2_core::conn::ConnState;
use wsv2_core::session::SessionEvent;
use wsv2_core::turn::TurnEvent;
use wsv2_core::{Config, ConnId};

#[derive(Clone, Debug)]
enum Act {
    Create {
        lane: u8,
        prev: Option<u8>,
        store: bool,
    },
    Progress {
        pick: u8,
        what: u8,
    },
    ConnError,
    Tail,
    Lost,
    Abandon,
    Gone,
    Pressure(bool),
    Advance(u16),
    Pong,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (0u8..4, proptest::option::of(0u8..8), any::<bool>()).prop_map(|(lane, prev, store)| Act::Create { lane, prev, store }),
        10 => (any::<u8>(), 0u8..20).prop_map(|(pick, what)| Act::Progress { pick, what }),
        1 => Just(Act::ConnError),
        1 => Just(Act::Tail),
        1 => Just(Act::Lost),
        1 => Just(Act::Abandon),
        1 => Just(Act::Gone),
        1 => any::<bool>().prop_map(Act::Pressure),
        3 => (0u16..1500).prop_map(Act::Advance),
        1 => Just(Act::Pong),
    ]
}

/// A minimal upstream: FIFO lanes per conn, fed from what the session wrote
#[derive(Default)]
struct FakeUpstream {
    seen: usize,
    conns: BTreeMap<u64, BTreeMap<Option<String>, VecDeque<Option<String>>>>,
    dead: HashSet<u64>,
    dirty: HashSet<u64>,
    next_id: u32,
    ids: Vec<String>,
}

impl FakeUpstream {
    fn sync(&mut self, sim: &Sim) {
        for (conn, v) in &sim.to_upstream[self.seen..] {
            if v["type"] == "response.create" {
                let lane = v["stream_id"].as_str().map(str::to_owned);
                self.conns
                    .entry(conn.0)
                    .or_default()
                    .entry(lane)
                    .or_default()
                    .push_back(None);
            }
        }
        self.seen = sim.to_upstream.len();
        for c in &sim.closes {
            self.dead.insert(c.0);
        }
    }

    fn live_conn(&self, sim: &Sim) -> Option<u64> {
        sim.session
            .active_conn()
            .or(sim.session.retiring_conn())
            .map(|c| c.id().0)
            .filter(|c| !self.dead.contains(c))
    }

    /// The next event of some open response, or None
    fn progress(&mut self, conn: u64, pick: u8, what: u8) -> Option<Value> {
        let lanes = self.conns.get_mut(&conn)?;
        let open: Vec<_> = lanes
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(l, _)| l.clone())
            .collect();
        if open.is_empty() {
            return None;
        }
        let lane = open[pick as usize % open.len()].clone();
        let queue = lanes.get_mut(&lane).unwrap();
        let mut v = match queue.front().cloned().unwrap() {
            None => {
                self.next_id += 1;
                let id = format!("resp_{}", self.next_id);
                self.ids.push(id.clone());
                *queue.front_mut().unwrap() = Some(id.clone());
                json!({"type": "response.created", "response": {"id": id, "store": what.is_multiple_of(2)}})
            }
            Some(id) => match what {
                0..=9 => json!({"type": "response.output_text.delta", "delta": "x"}),
                10..=14 => {
                    queue.pop_front();
                    json!({"type": "response.completed", "response": {"id": id, "store": what.is_multiple_of(2), "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}})
                }
                15 => {
                    queue.pop_front();
                    json!({"type": "response.failed", "response": {"id": id}})
                }
                16 => {
                    queue.pop_front();
                    json!({"type": "response.incomplete", "response": {"id": id}})
                }
                _ => {
                    queue.pop_front();
                    self.dirty.insert(conn);
                    json!({"type": "error", "status": 500, "error": {"type": "server_error", "code": "server_error", "message": "boom"}})
                }
            },
        };
        if let Some(l) = lane {
            v["stream_id"] = json!(l);
        }
        Some(v)
    }

    fn end_conn(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }
}

fn cfg() -> Config {
    let mut cfg = Config::default();
    let ms = Duration::from_millis;
    cfg.upstream.ping_interval = ms(500);
    cfg.upstream.pong_timeout = ms(100);
    cfg.upstream.max_age = ms(3000);
    cfg.upstream.max_inflight_per_conn = 3;
    cfg.session.max_held_creates_per_session = 4;
    cfg.session.slot_wait_timeout = ms(200);
    cfg.session.drain_timeout = ms(1000);
    cfg.session.client_write_timeout = ms(700);
    cfg.session.inter_turn_idle_timeout = ms(2500);
    cfg.session.first_message_timeout = ms(5000);
    cfg
}

fn check_invariants(sim: &Sim, up: &FakeUpstream) -> Result<(), TestCaseError> {
    // The client can fill `max_held_creates_per_session`; creates lost with their conn before
    // any event reached the client are re-queued ahead of them, and there are at most
    // `max_inflight_per_conn` of those per conn of the session (an active and a retiring one).
    let (cfg, held) = (cfg(), sim.session.held_creates());
    let bound = cfg.session.max_held_creates_per_session + 2 * cfg.upstream.max_inflight_per_conn;
    prop_assert!(held <= bound, "held creates exceed their bound");
    for conn in [sim.session.active_conn(), sim.session.retiring_conn()]
        .into_iter()
        .flatten()
    {
        if conn.state() == ConnState::Closed {
            prop_assert_eq!(conn.poll_timeout(), None, "a closed conn keeps a timer");
        }
    }
    for r in &sim.released {
        if up.dirty.contains(&r.record.id.0) {
            prop_assert!(!r.reusable, "a dirty conn was released reusable");
        }
    }
    if sim.session.is_finished() {
        prop_assert_eq!(
            sim.session.poll_timeout(),
            None,
            "a finished session keeps a timer"
        );
    }
    Ok(())
}

fn run(acts: Vec<Act>) -> Result<(), TestCaseError> {
    let world = World {
        max_concurrency: 2,
        ..World::default()
    };
    let mut sim = Sim::with_world(cfg(), world);
    let mut up = FakeUpstream::default();
    let mut creates = 0usize;
    for a in acts {
        if sim.session.is_finished() {
            break;
        }
        let conn = up.live_conn(&sim);
        match a {
            Act::Create { .. } if sim.session.is_draining() => {} // a departed client sends nothing
            Act::Create { lane, prev, store } => {
                let lane = (lane > 0).then(|| format!("l{lane}"));
                let prev = prev.and_then(|i| up.ids.get(i as usize).cloned());
                sim.client(create(Some("m"), prev.as_deref(), lane.as_deref(), store));
                creates += 1;
            }
            Act::Progress { pick, what } => {
                if let Some(c) = conn
                    && let Some(v) = up.progress(c, pick, what)
                {
                    sim.upstream(c, v);
                }
            }
            Act::ConnError => {
                if let Some(c) = conn {
                    up.dirty.insert(c);
                    up.end_conn(c);
                    sim.upstream(c, json!({"type": "error", "status": 500, "error": {"type": "server_error", "message": "conn"}}));
                }
            }
            Act::Tail => {
                if let Some(c) = conn {
                    up.dirty.insert(c);
                    sim.upstream(c, json!({"type": "response.output_text.delta", "stream_id": "nobody", "delta": "late"}));
                }
            }
            Act::Lost => {
                if let Some(c) = conn {
                    up.dead.insert(c);
                    up.end_conn(c);
                    sim.upstream_closed(c);
                }
            }
            Act::Abandon => {
                if let Some(c) = conn {
                    up.dead.insert(c);
                    up.end_conn(c);
                    sim.write_abandoned(c, true);
                }
            }
            Act::Gone => sim.client_gone(),
            Act::Pressure(full) => sim.backpressure(full),
            Act::Advance(ms) => sim.advance(Duration::from_millis(ms.into())),
            Act::Pong => {
                if let Some(c) = conn {
                    sim.pong(c);
                }
            }
        }
        up.sync(&sim);
        for c in up.dead.clone() {
            up.end_conn(c);
        }
        check_invariants(&sim, &up)?;
    }
    // Drive to the end: the client leaves, upstream finishes what it can, time runs out.
    sim.client_gone();
    for _ in 0..200 {
        if sim.session.is_finished() {
            break;
        }
        up.sync(&sim);
        match up
            .live_conn(&sim)
            .and_then(|c| up.progress(c, 0, 12).map(|v| (c, v)))
        {
            Some((c, v)) => sim.upstream(c, v),
            None => sim.advance(Duration::from_millis(500)),
        }
        check_invariants(&sim, &up)?;
    }
    prop_assert!(sim.session.is_finished());
    let mut outcomes = HashSet::new();
    for e in &sim.events {
        let turn = match e {
            SessionEvent::Turn(TurnEvent::ResponseEnded(r)) if !r.successor => r.turn,
            SessionEvent::Refused { turn, .. } | SessionEvent::Dropped { turn } => *turn,
            _ => continue,
        };
        prop_assert!(
            outcomes.insert(turn),
            "{turn} has two outcomes\n{}",
            sim.trace()
        );
    }
    prop_assert_eq!(
        outcomes.len(),
        creates,
        "every create ends in exactly one outcome\n{}",
        sim.trace()
    );
    prop_assert!(sim.released.iter().all(|r| r.record.id != ConnId(0)));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4000,
        rng_seed: RngSeed::Fixed(0xabcdef),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_sessions_keep_their_invariants(acts in proptest::collection::vec(act(), 1..80)) {
        run(acts)?;
    }
}

#[test]
fn regression_create_after_slow_client_timeout() {
    let acts = vec![
        Act::Create {
            lane: 0,
            prev: None,
            store: false,
        },
        Act::Create {
            lane: 0,
            prev: None,
            store: false,
        },
        Act::Pressure(true),
        Act::Advance(700),
        Act::Create {
            lane: 0,
            prev: None,
            store: false,
        },
    ];
    run(acts).unwrap();
}
