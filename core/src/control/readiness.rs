//! What the admin listener's `/readyz` reports: the public verdict, whether a client may upgrade
//! now, and, per account, why it is or is not taking traffic. Read-only: taking it changes nothing.

use std::time::{Duration, Instant};

use super::{Control, UpgradeRefusal};
use crate::AccountId;
use crate::pool::PoolStats;
use crate::resolver::Transport;
use crate::scheduler::Health;

/// Whether one account takes new sessions now
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountState {
    /// Scheduled
    Usable,
    /// Rate limited or failing: not scheduled for this long yet
    Cooling {
        /// Time until the cooldown ends
        remaining: Duration,
    },
    /// Its credentials were refused: not scheduled until a reload
    Disabled,
}

impl AccountState {
    /// `usable`, `cooling`, `disabled`
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usable => "usable",
            Self::Cooling { .. } => "cooling",
            Self::Disabled => "disabled",
        }
    }
}

/// One account's readiness detail
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountReadiness {
    /// The account
    pub account: AccountId,
    /// Its configured name
    pub name: String,
    /// Health as the scheduler sees it now
    pub state: AccountState,
    /// Whether the resolver sends its traffic over WebSocket (else HTTP)
    pub websocket: bool,
    /// Responses in flight on it (concurrency slots held)
    pub in_flight: u32,
    /// Its `concurrency`
    pub concurrency: u32,
    /// Creates waiting for one of its slots
    pub slot_waiters: u32,
    /// Its pool (`None` for an account that resolves to HTTP)
    pub pool: Option<PoolStats>,
}

/// The gateway's readiness: the public verdict and every account's detail, in id order
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// The public `/readyz` verdict ([`Control::check_ready`])
    pub verdict: Result<(), UpgradeRefusal>,
    /// What an upgrade would get now ([`Control::check_upgrade`])
    pub upgrade: Result<(), UpgradeRefusal>,
    /// Every configured account
    pub accounts: Vec<AccountReadiness>,
}

impl Control {
    /// The readiness detail at `now`
    pub fn readiness(&self, now: Instant) -> Readiness {
        let mut accounts: Vec<AccountReadiness> = self
            .accounts()
            .filter_map(|spec| {
                let view = self.scheduler.account(spec.id, now)?;
                let state = match view.health {
                    Health::Usable => AccountState::Usable,
                    Health::Cooling { until } => AccountState::Cooling {
                        remaining: until.saturating_duration_since(now),
                    },
                    Health::Disabled => AccountState::Disabled,
                };
                Some(AccountReadiness {
                    account: spec.id,
                    name: spec.name.clone(),
                    state,
                    websocket: view.spec.transport == Transport::WsV2,
                    in_flight: view.unfinished,
                    concurrency: spec.concurrency,
                    slot_waiters: view.waiters,
                    pool: self.pool_stats(spec.id),
                })
            })
            .collect();
        accounts.sort_by_key(|a| a.account.0);
        Readiness {
            verdict: self.check_ready(now),
            upgrade: self.check_upgrade(now),
            accounts,
        }
    }
}
