//! The reconnect storm: every session opens at once on a cold pool and takes a turn; then, after
//! the gateway is restarted (SIGTERM, a new process on the same port, by the caller), every
//! client reconnects at once and takes a turn again (what a deploy does).
//!
//! ```text
//!   cold:    release all ─▶ connect (refusal? count, retry) ─▶ 1 turn ─▶ hold the socket
//!   restart: ready file ─▶ caller restarts the gateway ─▶ each socket closes ─▶ reconnect
//!            (refused TCP while no gateway listens: retry, counted apart) ─▶ 1 turn
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::integrity::Outcome;
use super::probe::MockAdmin;
use super::session::{self, Kind, Plan, Tally, connect_outcome};
use crate::client::{ConnectError, Credentials, WsClient, WsStream};
use crate::loadgen::histogram::Histogram;

/// Pause between connect attempts of one client while nothing listens (TCP refused).
const TCP_RETRY: Duration = Duration::from_millis(20);
/// Pause after a refused upgrade (an HTTP error status) before the client tries again.
const REFUSED_RETRY: Duration = Duration::from_millis(100);

/// The storm's plan.
#[derive(Debug, Clone)]
pub struct StormPlan {
    /// `ws://HOST/v1/responses` (the same after the restart).
    pub ws_url: String,
    /// Client key.
    pub key: String,
    /// Sessions, all at once.
    pub sessions: usize,
    /// `metadata.mock_deltas`.
    pub deltas: u32,
    /// Per-event deadline.
    pub event_timeout: Duration,
    /// How long a client keeps trying to connect (and waits for the restart's close).
    pub connect_deadline: Duration,
    /// Written once every session holds its socket after the cold phase: the cue to restart.
    pub ready_file: Option<PathBuf>,
    /// The mock's admin endpoint: dials in flight are its `handshakes_in_flight_max`.
    pub admin: Option<MockAdmin>,
}

/// One phase's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StormPhase {
    /// Turns and integrity.
    pub tally: Tally,
    /// Upgrades refused with an HTTP status (the pass rule wants 0), by status.
    pub refusals: std::collections::BTreeMap<u16, u64>,
    /// TCP connects refused while no gateway listened (restart gap), retried.
    pub tcp_retries: u64,
    /// Clients that never got a socket within the deadline.
    pub gave_up: u64,
    /// Time to first event from the storm's start (cold) or from the client's close (restart),
    /// ms: p50, p99, max.
    #[serde(serialize_with = "percentiles_ms")]
    pub first_event: Histogram,
    /// The most upgrades the upstream answered at once during the phase.
    pub dials_in_flight_max: Option<u64>,
    /// Wall time, ms.
    pub wall_ms: u64,
}

fn percentiles_ms<S: serde::Serializer>(h: &Histogram, s: S) -> Result<S::Ok, S::Error> {
    let p = h.summary_us();
    serde_json::json!({"count": p.count, "p50_ms": p.p50 / 1e3, "p99_ms": p.p99 / 1e3,
        "max_ms": p.max / 1e3})
    .serialize(s)
}

/// Both phases.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StormResult {
    /// Sessions.
    pub sessions: usize,
    /// Every session opening at once on a cold pool.
    pub cold: StormPhase,
    /// Every client reconnecting at once after the restart (absent without a ready file).
    pub restart: Option<StormPhase>,
}

struct Client {
    plan: Plan,
    phase: StormPhase,
}

impl Client {
    /// Connects, retrying refused TCP and refused upgrades until the deadline.
    async fn connect(&mut self, deadline: Instant) -> Option<WsStream> {
        let creds = Credentials::bearer(&self.plan.key);
        loop {
            match WsClient::connect(&self.plan.ws_url, &creds).await {
                Ok(client) => return Some(client.into_stream()),
                Err(ConnectError::Rejected { status, body }) => {
                    *self.phase.refusals.entry(status).or_default() += 1;
                    let outcome = connect_outcome(&ConnectError::Rejected { status, body });
                    self.phase.tally.counts.outcome(&outcome);
                    if Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(REFUSED_RETRY).await; // a client's back-off
                }
                Err(ConnectError::Transport(_)) => {
                    self.phase.tcp_retries += 1;
                    if Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(TCP_RETRY).await; // a client's back-off
                }
            }
        }
        self.phase.gave_up += 1;
        None
    }

    /// One turn on `ws`; the first event's time is measured from `since`.
    async fn turn(&mut self, ws: &mut WsStream, since: Instant, epoch: Instant) -> Outcome {
        let mut tally = Tally::default();
        // The create goes out at once, so the wait before the send is this offset.
        let before_send = since.elapsed().as_nanos() as u64;
        let outcome = session::default_lane_turns(&self.plan, ws, &mut tally, epoch).await;
        if tally.first_event.count() > 0 {
            // One response: its only sample (within the histogram's 1.6 %).
            self.phase
                .first_event
                .record(before_send + tally.first_event.max());
        }
        self.phase.tally.merge(&tally);
        outcome
    }
}

/// Waits for the gateway to end `ws` (close frame or EOF), up to `limit`.
async fn closed(ws: &mut WsStream, limit: Duration) -> bool {
    use futures_util::StreamExt;
    let wait = async {
        loop {
            match ws.next().await {
                Some(Ok(async_tungstenite::tungstenite::Message::Close(_)))
                | Some(Err(_))
                | None => {
                    return;
                }
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(limit, wait).await.is_ok()
}

async fn dials_max(admin: Option<&MockAdmin>) -> Option<u64> {
    let state: Value = admin?.state().await.ok()?;
    state["handshakes_in_flight_max"].as_u64()
}

/// Runs the storm (both phases when a ready file is given).
pub async fn run(plan: &StormPlan) -> StormResult {
    let epoch = Instant::now();
    if let Some(admin) = &plan.admin {
        let _ = admin.post("/reset-max").await;
    }
    let barrier = Arc::new(Barrier::new(plan.sessions + 1));
    let restart = Arc::new(Barrier::new(plan.sessions + 1));
    let mut tasks = JoinSet::new();
    for n in 0..plan.sessions as u64 {
        let (barrier, restart) = (barrier.clone(), restart.clone());
        let storm = plan.clone();
        tasks.spawn(async move {
            let mut client = Client {
                plan: Plan {
                    ws_url: storm.ws_url.clone(),
                    http_base: String::new(),
                    key: storm.key.clone(),
                    session: n,
                    kind: Kind::Ws,
                    turns: 1,
                    until: None,
                    deltas: storm.deltas,
                    event_timeout: storm.event_timeout,
                    client_fault: None,
                },
                phase: StormPhase::default(),
            };
            barrier.wait().await;
            let start = Instant::now();
            let mut ws = client.connect(start + storm.connect_deadline).await;
            if let Some(socket) = ws.as_mut()
                && client.turn(socket, start, epoch).await != Outcome::Completed
            {
                ws = None;
            }
            let cold = std::mem::take(&mut client.phase);
            restart.wait().await;
            if storm.ready_file.is_none() {
                return (cold, None);
            }
            if let Some(socket) = ws.as_mut() {
                // A socket the restart never closed is simply replaced at the deadline.
                let _ = closed(socket, storm.connect_deadline).await;
            }
            let closed_at = Instant::now();
            drop(ws);
            let mut ws = client.connect(closed_at + storm.connect_deadline).await;
            if let Some(socket) = ws.as_mut() {
                client.turn(socket, closed_at, epoch).await;
            }
            (cold, Some(client.phase))
        });
    }
    barrier.wait().await;
    let started = Instant::now();
    // Every client reaches the restart barrier after its cold turn.
    restart.wait().await;
    let cold_wall = started.elapsed();
    let cold_dials = dials_max(plan.admin.as_ref()).await;
    if let Some(admin) = &plan.admin {
        let _ = admin.post("/reset-max").await;
    }
    let restart_started = Instant::now();
    if let Some(file) = &plan.ready_file {
        let _ = std::fs::write(file, b"ready\n");
    }
    let mut result = StormResult {
        sessions: plan.sessions,
        ..StormResult::default()
    };
    let mut restarted: Option<StormPhase> = plan.ready_file.as_ref().map(|_| StormPhase::default());
    while let Some(joined) = tasks.join_next().await {
        let Ok((cold, again)) = joined else { continue };
        merge(&mut result.cold, &cold);
        if let (Some(total), Some(again)) = (restarted.as_mut(), again) {
            merge(total, &again);
        }
    }
    result.cold.wall_ms = cold_wall.as_millis() as u64;
    result.cold.dials_in_flight_max = cold_dials;
    if let Some(phase) = restarted.as_mut() {
        phase.wall_ms = restart_started.elapsed().as_millis() as u64;
        phase.dials_in_flight_max = dials_max(plan.admin.as_ref()).await;
    }
    result.restart = restarted;
    result
}

fn merge(total: &mut StormPhase, one: &StormPhase) {
    total.tally.merge(&one.tally);
    for (status, n) in &one.refusals {
        *total.refusals.entry(*status).or_default() += n;
    }
    total.tcp_retries += one.tcp_retries;
    total.gave_up += one.gave_up;
    total.first_event.merge(&one.first_event);
}
