//! What a session task and an HTTP task do alike. Each owns one core holder (a `Session` or
//! an `HttpTurn`) and performs its upstream side the same way: the control task's answers (a
//! lease brings its conn's I/O), the reports of the conns it holds, releases, the leases left
//! unread when it ends, and each ended response's figures and span. Nothing here decides: every
//! method hands the holder an input or performs one of its outputs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use wsv2_core::metrics::LocalHistogram;
use wsv2_core::pool::Lease;
use wsv2_core::scheduler::FailureKind;
use wsv2_core::turn::{Holder, HolderInput, ResponseReport, SessionInfo, TurnEvent, UpstreamInput};
use wsv2_core::{Config, ConnId, SessionId};

use crate::metrics_export::{ClientTransport, Metrics, TurnHandles};
use crate::runtime::{Rt, Sending};
use crate::shared::{ControlMsg, ControlTx, Delivery, DialHeaders, SocketPermit};
pub(crate) use crate::traces::Labels;
use crate::upstream::{ConnIo, HeldConns, UpstreamMsg};
use tracing::{debug, warn};

/// What a session task and an HTTP task start with alike
pub(crate) struct HolderStart {
    pub(crate) rt: Rt,
    pub(crate) id: SessionId,
    pub(crate) cfg: Arc<Config>,
    pub(crate) control: ControlTx,
    pub(crate) info: SessionInfo,
    /// The client key, account names and trace sink (the client's `traceparent`)
    pub(crate) labels: Labels,
    pub(crate) headers: Arc<DialHeaders>,
    /// Held for the socket's or the request's life (the per-key cap)
    pub(crate) permit: SocketPermit,
    /// Where the per-event and per-turn figures go (`None` with `metrics = false`)
    pub(crate) metrics: Option<Arc<Metrics>>,
}

/// A holder's task's link to the control task and to the conns it holds
pub(crate) struct HolderIo<I> {
    /// The id the holder is known by to the control task
    pub(crate) id: SessionId,
    pub(crate) control: ControlTx,
    /// The control task's answers
    pub(crate) inbox: mpsc::Receiver<Box<Delivery<I>>>,
    /// The conns the holder holds (active + retiring) and their reports
    pub(crate) held: HeldConns<ControlMsg>,
}

impl<I: HolderInput> HolderIo<I> {
    pub(crate) fn new(
        id: SessionId,
        control: ControlTx,
        inbox: mpsc::Receiver<Box<Delivery<I>>>,
    ) -> Self {
        Self {
            id,
            held: HeldConns::new(control.clone()),
            control,
            inbox,
        }
    }

    /// Hands `holder` an answer of the control task; a lease's conn is taken over first
    pub(crate) fn deliver(
        &mut self,
        holder: &mut impl Holder<Input = I>,
        now: Instant,
        d: Delivery<I>,
    ) {
        let lost = (d.input.lease()).and_then(|lease| self.held.adopt(d.conn, lease.record.id));
        holder.handle_control(now, d.input);
        if let Some(conn) = lost {
            // The conn's socket ended between the lease and its delivery.
            holder.handle_upstream(now, conn, UpstreamInput::Closed);
        }
    }

    /// Hands `holder` a held conn's report (one of a conn released meanwhile goes to the
    /// control task) at `now`; `Some(now)` when it was a frame
    pub(crate) async fn report(
        &mut self,
        holder: &mut impl Holder<Input = I>,
        now: Instant,
        msg: UpstreamMsg,
    ) -> Option<Instant> {
        let msg = match self.held.keep_held(msg) {
            Ok(msg) => msg,
            Err(sending) => {
                sending.await;
                return None;
            }
        };
        let frame = matches!(msg.input, UpstreamInput::Frame(..));
        holder.handle_upstream(now, msg.conn, msg.input);
        frame.then_some(now)
    }

    /// Sends the control task `msg`, a holder's request; when it gives conn `released` back,
    /// then routes the conn's reports there: the release reaches the control task before any
    /// report the reader sends it after the owner change, so an idle frame is never seen
    /// before its release
    pub(crate) fn request(
        &mut self,
        msg: ControlMsg,
        released: Option<ConnId>,
    ) -> impl Future<Output = ()> {
        let sending = self.send(msg);
        async move {
            sending.await;
            if let Some(conn) = released {
                self.held.release(conn);
            }
        }
    }

    /// Sends the control task `msg` (dropped when it is gone: shutting down)
    pub(crate) fn send(&self, msg: ControlMsg) -> Sending {
        Sending::new(&self.control, msg)
    }

    /// After the holder: answers the control task queued meanwhile are never read, and a lease
    /// among them would stay leased forever; the inbox closes (a later answer is returned by the
    /// control task itself) and such leases go back to the core, which returns them to the pool
    pub(crate) async fn return_unread_leases(&mut self) {
        self.inbox.close();
        while let Ok(delivery) = self.inbox.try_recv() {
            if let Some(lease) = delivery.input.into_lease() {
                self.send(ControlMsg::UnreadLease { lease }).await;
            }
        }
    }
}

/// A holder's task as the control task knows it
pub(crate) struct HolderEntry<I> {
    /// Where its answers go
    pub(crate) inbox: mpsc::Sender<Box<Delivery<I>>>,
    /// What the dials made for it carry
    pub(crate) headers: Arc<DialHeaders>,
}

/// Queues `input` in the inbox of the task of `holder` `id` (not in `holders`: it ended), with
/// the conn's I/O when it is a lease; returns a lease that task cannot take, for the pool. An inbox
/// holds more than the answers its holder can have outstanding (one schedule, one acquire, one
/// slot per waiting create), so a full one is a bug, not load; a closed one is a task that
/// ended after queueing its close behind this answer (its client left during a dial).
pub(crate) fn deliver<I: HolderInput>(
    holders: &HashMap<SessionId, HolderEntry<I>>,
    conns: &HashMap<ConnId, ConnIo>,
    id: SessionId,
    holder: &'static str,
    input: I,
) -> Option<Lease> {
    let conn = (input.lease()).and_then(|lease| conns.get(&lease.record.id).cloned());
    let Some(HolderEntry { inbox, .. }) = holders.get(&id) else {
        debug!(holder, %id, "answer for a holder that ended");
        return input.into_lease();
    };
    let Err(e) = inbox.try_send(Box::new(Delivery { input, conn })) else {
        return None;
    };
    if matches!(e, mpsc::error::TrySendError::Full(_)) {
        warn!(holder, %id, "holder inbox full: an answer is dropped");
    }
    e.into_inner().input.into_lease()
}

/// Logs an event of a create's life as both holders' tasks do: a frame that made its conn
/// dirty as a warning, any other at debug level under the `holder`'s message
pub(crate) fn log_turn_event(event: &TurnEvent, holder: &'static str) {
    match event {
        TurnEvent::TailPacket { conn } => warn!(%conn, "tail packet: conn is dirty"),
        TurnEvent::UpstreamGarbage { conn } => {
            warn!(%conn, "non-JSON frame from upstream: conn is dirty")
        }
        other => debug!(?other, "{holder}"),
    }
}

/// A holder's metric handles (resolved once per holder) and the overhead of the events
/// relayed since the last merge
pub(crate) struct TurnMetrics {
    /// Where responses and tokens are counted, by client key
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) handles: TurnHandles,
    /// Per relayed upstream event: task receive → client; merged once per response
    pub(crate) overhead: LocalHistogram,
}

impl TurnMetrics {
    pub(crate) fn new(metrics: Arc<Metrics>, transport: ClientTransport) -> Self {
        Self {
            handles: metrics.turn_handles(transport),
            metrics,
            overhead: LocalHistogram::default(),
        }
    }

    /// A retry, and a failover when it moves to another account
    pub(crate) fn retried(&self, failure: FailureKind, switch_account: bool) {
        self.metrics.retry(self.handles.transport, failure.as_str());
        if switch_account {
            self.handles.failovers.inc();
        }
    }

    /// Once per ended response: it is counted with its tokens (`model`: the client's) under
    /// the client key, its time to first event and the events relayed since the last merge join
    /// the exported histograms (their sum as one turn's overhead; an HTTP turn's even when it
    /// relayed none)
    pub(crate) fn response_ended(
        &mut self,
        r: &ResponseReport,
        labels: &Labels,
        model: Option<&[u8]>,
    ) {
        let (h, key) = (&self.handles, &labels.key_name);
        self.metrics
            .response_ended(h.transport, r.outcome.as_str(), key);
        if r.cut_at_conn_limit {
            h.cut_at_conn_limit.inc();
        }
        if let Some(usage) = &r.usage {
            let account = labels.account(&r.account);
            self.metrics.tokens(key, account, model, usage);
        }
        if let Some(d) = r.time_to_first_event {
            h.time_to_first_event.observe(d.as_secs_f64());
        }
        if self.overhead.count() > 0 || h.transport == ClientTransport::Http {
            let mut turn = LocalHistogram::default();
            turn.record(self.overhead.sum());
            self.overhead.merge_into(&h.overhead_event);
            turn.merge_into(&h.overhead_turn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics_export::ControlSnapshot;

    #[test]
    fn a_retry_is_counted_under_the_failure_label_the_docs_name_on_both_transports() {
        // An HTTP retry was labelled by the failure's Debug form ("dialfailed").
        let metrics = Arc::new(Metrics::new(&Default::default(), &[]));
        for transport in [ClientTransport::Ws, ClientTransport::Http] {
            let m = TurnMetrics::new(metrics.clone(), transport);
            m.retried(FailureKind::DialFailed, true);
            m.retried(FailureKind::RateLimited { reset_after: None }, false);
        }
        let text = metrics.render(ControlSnapshot::default());
        for t in ["ws", "http"] {
            for failure in ["dial_failed", "rate_limited"] {
                let series =
                    format!("wsv2_retries_total{{transport=\"{t}\",failure=\"{failure}\"}} 1");
                assert!(text.contains(&series), "{series} in\n{text}");
            }
            let failovers = format!("wsv2_failovers_total{{transport=\"{t}\"}} 1");
            assert!(text.contains(&failovers), "{failovers} in\n{text}");
        }
    }
}
