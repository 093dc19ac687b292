//! TEMPORARY stand-in for `wsv2_core::control` (the lead's module, landing on main); mirrors its
//! announced API so the shell compiles. Deleted when the real module is merged.
#![allow(dead_code, missing_docs, unreachable_pub, clippy::all)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use wsv2_core::pool::PoolStats;
use wsv2_core::session::{Admission, Lease, ModelMap, Refusal, SessionCommand, SessionEvent};
use wsv2_core::store::{OpId, StoreCommand, StoreFailure};
use wsv2_core::{AccountId, Config, ConnId, SessionId, TurnId};

pub struct AccountSpec {
    pub id: AccountId,
    pub name: String,
    pub protocol: wsv2_core::resolver::AccountProtocol,
    pub concurrency: u32,
    pub priority: i32,
    pub model_map: Arc<ModelMap>,
}
pub struct SessionInfo {
    pub group: String,
    pub session_key: Option<String>,
    pub openai_beta: Vec<String>,
    pub codex_beta_features: Vec<String>,
}
#[derive(Debug)]
pub enum UpgradeRefusal {
    NoUsableAccount,
    UpgradeRequired,
}
impl UpgradeRefusal {
    pub fn status(&self) -> u16 {
        match self {
            Self::NoUsableAccount => 503,
            Self::UpgradeRequired => 426,
        }
    }
    pub fn message(&self) -> &str {
        "refused"
    }
}
#[derive(Debug)]
pub struct DialFailure {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub message: String,
}
#[derive(Debug)]
pub enum ControlEvent {}
pub enum SessionInput {
    Admission(Admission),
    AdmissionRefused(Refusal),
    Lease(Lease),
    LeaseRefused,
    SlotGranted(TurnId),
}
pub enum ControlOutput {
    Session(SessionId, SessionInput),
    Dial {
        conn: ConnId,
        account: AccountId,
        for_session: Option<SessionId>,
    },
    Ping {
        account: AccountId,
        conn: ConnId,
    },
    Close {
        account: AccountId,
        conn: ConnId,
    },
    Store(StoreCommand),
    Event(ControlEvent),
}
pub struct Control;
impl Control {
    pub fn new(_cfg: Arc<Config>, _accounts: Vec<AccountSpec>, _seed: u64, _now: Instant) -> Self {
        Self
    }
    pub fn check_upgrade(&self, _now: Instant) -> Result<(), UpgradeRefusal> {
        Ok(())
    }
    pub fn open_session(&mut self, _now: Instant, _id: SessionId, _info: SessionInfo) {}
    pub fn handle_session_command(&mut self, _now: Instant, _id: SessionId, _cmd: SessionCommand) {}
    pub fn handle_session_event(&mut self, _now: Instant, _id: SessionId, _event: &SessionEvent) {}
    pub fn close_session(&mut self, _now: Instant, _id: SessionId) {}
    pub fn handle_dial_ok(&mut self, _now: Instant, _account: AccountId, _conn: ConnId) {}
    pub fn handle_dial_failed(&mut self, _now: Instant, _a: AccountId, _c: ConnId, _f: DialFailure) {}
    pub fn handle_idle_frame(&mut self, _now: Instant, _a: AccountId, _c: ConnId) {}
    pub fn handle_idle_pong(&mut self, _now: Instant, _a: AccountId, _c: ConnId) {}
    pub fn handle_idle_closed(&mut self, _now: Instant, _a: AccountId, _c: ConnId) {}
    pub fn handle_store_reply(&mut self, _now: Instant, _op: OpId, _r: Result<Option<String>, StoreFailure>) {}
    pub fn handle_timeout(&mut self, _now: Instant) {}
    pub fn poll_output(&mut self) -> Option<ControlOutput> {
        None
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    pub fn stats(&self) -> PoolStats {
        PoolStats::default()
    }
}

/// Stand-in for the announced `Session::handle_control`
pub fn handle_control(
    session: &mut wsv2_core::session::Session,
    now: Instant,
    input: SessionInput,
) {
    match input {
        SessionInput::Admission(a) => session.handle_admission(now, a),
        SessionInput::AdmissionRefused(r) => session.handle_admission_refused(now, r),
        SessionInput::Lease(l) => session.handle_lease(now, l),
        SessionInput::LeaseRefused => session.handle_lease_refused(now),
        SessionInput::SlotGranted(t) => session.handle_slot_granted(now, t),
    }
}
