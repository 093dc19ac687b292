//! The two periodic duties of a pool, run by the registry for every account: the ping tick
//! keeps idle conns provably alive, the cleanup tick trims the idle set.

use std::time::Instant;

use super::account::{AccountPool, Slot, SlotState};
use super::keys::KeyIdx;
use super::request::{CloseReason, PoolRequest};
use crate::ConnId;
use crate::conn::ConnRecord;

impl AccountPool {
    /// Pings every idle conn silent for `upstream.ping_interval` that has no ping outstanding;
    /// each must answer within `upstream.pong_timeout` or it is closed
    pub fn handle_ping_tick(&mut self, now: Instant) {
        let ping_interval = self.settings.ping_interval;
        let pong_due = now + self.settings.pong_timeout;
        for conn in &self.idle_order {
            if let Some(Slot {
                state:
                    SlotState::Idle {
                        record,
                        pong_due: due @ None,
                        ..
                    },
                ..
            }) = self.conns.get_mut(conn)
                && now.saturating_duration_since(record.last_read) >= ping_interval
            {
                *due = Some(pong_due);
                self.out.push_back(PoolRequest::Ping(*conn));
            }
        }
    }

    /// Closes idle conns past `upstream.max_age` (always), then — least recently used first,
    /// never taking unheld idle conns below `min_idle_per_account`, never touching held ones —
    /// those idle longer than `idle_timeout` and those beyond `max_idle_per_account`
    pub fn handle_cleanup_tick(&mut self, now: Instant) {
        while let Some(conn) = self.idle_where(|_, record, _| self.too_old(record, now)) {
            self.close(conn, CloseReason::MaxAge);
        }
        let pool = &self.settings.pool;
        let (min_idle, max_idle, idle_timeout) = (
            pool.min_idle_per_account,
            pool.max_idle_per_account,
            pool.idle_timeout,
        );
        while self.unheld_idle() > min_idle {
            let expired = self.idle_where(|_, record, held| {
                !held && now.saturating_duration_since(record.last_released) > idle_timeout
            });
            let Some(conn) = expired else { break };
            self.close(conn, CloseReason::IdleTimeout);
        }
        while self.unheld_idle() > max_idle.max(min_idle) {
            let Some(conn) = self.idle_where(|_, _, held| !held) else {
                break;
            };
            self.close(conn, CloseReason::IdleSurplus);
        }
        self.after_capacity_change(now);
    }

    /// Closes idle conns whose pong is overdue
    pub(super) fn expire_pongs(&mut self, now: Instant) {
        while let Some(conn) = self.idle_order.iter().copied().find(|c| {
            matches!(self.conns.get(c), Some(Slot { state: SlotState::Idle { pong_due: Some(due), .. }, .. })
                if *due <= now)
        }) {
            self.close(conn, CloseReason::PongTimeout);
        }
    }

    fn unheld_idle(&self) -> usize {
        self.idle_order.len() - self.holds.len()
    }

    /// The least recently released idle conn matching `filter(key, record, held)`
    pub(super) fn idle_where(
        &self,
        filter: impl Fn(KeyIdx, &ConnRecord, bool) -> bool,
    ) -> Option<ConnId> {
        self.idle_order.iter().copied().find(|c| {
            matches!(self.conns.get(c), Some(Slot { key, state: SlotState::Idle { record, held, .. } })
                if filter(*key, record, *held))
        })
    }
}
