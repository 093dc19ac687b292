//! Where a scenario connects and with which credentials.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::Failure;
use crate::client::{Credentials, WsClient};

/// How long a scenario listens for something that must NOT arrive (a pong from a peer that stopped
/// answering). Only negative checks wait this long; everything else waits on events.
pub const SILENCE_WINDOW: Duration = Duration::from_millis(400);

/// What answers at the target URL; scenarios assert the outcome stated for this kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// The upstream itself (the mock, or the real service).
    Upstream,
    /// A wsv2 gateway in front of an upstream.
    Gateway,
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Upstream => "upstream",
            Self::Gateway => "gateway",
        })
    }
}

/// Maps a scenario name to the credentials it connects with (e.g. one gateway account per fault
/// scenario, so a 429 cooldown in one scenario cannot leak into another).
pub type AccountHook = Arc<dyn Fn(&str) -> Credentials + Send + Sync>;

/// A URL to run scenarios against.
#[derive(Clone)]
pub struct Target {
    /// WebSocket URL, e.g. `ws://127.0.0.1:PORT/v1/responses`.
    pub ws_url: String,
    /// HTTP base, e.g. `http://127.0.0.1:PORT/v1` (`/responses` is appended for SSE).
    pub http_base: String,
    /// The key presented when no hook is set.
    pub api_key: String,
    /// Upstream or gateway.
    pub kind: TargetKind,
    /// Per-scenario credentials; `None` = `Bearer api_key` for every scenario.
    pub account_for: Option<AccountHook>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("ws_url", &self.ws_url)
            .field("http_base", &self.http_base)
            .field("kind", &self.kind)
            .field("account_for", &self.account_for.is_some())
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A target with one key for every scenario.
    pub fn new(
        kind: TargetKind,
        ws_url: impl Into<String>,
        http_base: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        Self {
            ws_url: ws_url.into(),
            http_base: http_base.into(),
            api_key: api_key.into(),
            kind,
            account_for: None,
        }
    }

    /// Sets the per-scenario credentials hook.
    #[must_use]
    pub fn with_account_hook(
        mut self,
        hook: impl Fn(&str) -> Credentials + Send + Sync + 'static,
    ) -> Self {
        self.account_for = Some(Arc::new(hook));
        self
    }

    /// The credentials a scenario uses.
    pub fn credentials_for(&self, scenario: &str) -> Credentials {
        match &self.account_for {
            Some(hook) => hook(scenario),
            None => Credentials::bearer(self.api_key.clone()),
        }
    }
}

/// What a running scenario gets: the target, its own name and its credentials.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The target under test.
    pub target: Target,
    /// The scenario's name (the key passed to the account hook).
    pub scenario: &'static str,
    /// The scenario's credentials, resolved once.
    pub creds: Credentials,
}

impl Ctx {
    /// A context for one scenario.
    pub fn new(target: &Target, scenario: &'static str) -> Self {
        Self {
            creds: target.credentials_for(scenario),
            target: target.clone(),
            scenario,
        }
    }

    /// The target kind.
    pub fn kind(&self) -> TargetKind {
        self.target.kind
    }

    /// Opens a new WebSocket with the scenario's credentials.
    pub async fn connect(&self) -> Result<WsClient, Failure> {
        WsClient::connect(&self.target.ws_url, &self.creds)
            .await
            .map_err(Failure::from)
    }
}
