//! Where the core's store commands run: the in-process [`MemoryBackend`] (the default) or Redis
//! (`redis_url`). The core decides keys, TTLs, the breaker and what a failure means; this file
//! only executes.
//!
//! Memory commands answer synchronously inside the control task. Redis commands run in their
//! own task each (never on the control task), each under `store_op_timeout`, and come back as
//! [`ControlMsg::StoreReply`](crate::shared::ControlMsg); the core sheds commands beyond
//! `store.max_pending_ops`, so at most that many such tasks exist.

use std::sync::Arc;
use std::time::Instant;

use wsv2_core::store::{MemoryBackend, StoreRequest};

use crate::metrics_export::Metrics;
use crate::shared::{ControlMsg, ControlTx, StoreReply};
use crate::store_redis::RedisStore;

/// The store the control task runs commands on
pub(crate) enum StoreBackend {
    /// In-process, answered at once
    Memory(MemoryBackend),
    /// Redis, answered later from a spawned task
    Redis(Arc<RedisStore>),
}

impl StoreBackend {
    /// Runs `cmd`: `Some(reply)` now (memory), or `None` and the control task gets
    /// `ControlMsg::StoreReply` later (Redis)
    pub(crate) fn execute(
        &mut self,
        cmd: StoreRequest,
        metrics: Option<&Arc<Metrics>>,
        control: &ControlTx,
    ) -> Option<StoreReply> {
        match self {
            Self::Memory(memory) => {
                let started = Instant::now();
                let result = memory.execute(started, &cmd);
                if let Some(m) = metrics {
                    m.store_op(&cmd.kind, started, &result);
                }
                Some(StoreReply { op: cmd.op, result })
            }
            Self::Redis(redis) => {
                let redis = redis.clone();
                let metrics = metrics.cloned();
                let control = control.clone();
                crate::runtime::spawn(&redis.rt().clone(), async move {
                    let started = Instant::now();
                    let result = redis.execute(&cmd).await;
                    if let Some(m) = metrics {
                        m.store_op(&cmd.kind, started, &result);
                    }
                    let reply = StoreReply { op: cmd.op, result };
                    // The control task may be gone (shutdown): nothing waits for the reply then.
                    let _ = control.send(ControlMsg::StoreReply(reply)).await;
                });
                None
            }
        }
    }
}
