//! Many sessions at once, of mixed kinds, against one target: the integrity workload and the
//! load under the fault matrix and the soak.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use super::session::{self, ClientFaultSwitch, Kind, Plan, Tally};
use crate::Failure;

/// A load: `sessions` sessions at once, kinds dealt from `mix` in turn.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// `ws://HOST/v1/responses`.
    pub ws_url: String,
    /// `http://HOST/v1`.
    pub http_base: String,
    /// Client key.
    pub key: String,
    /// Sessions at once.
    pub sessions: usize,
    /// Turns per session (per lane).
    pub turns: usize,
    /// Keep every session taking turns for this long instead (`turns` is then a minimum of 0).
    pub duration: Option<Duration>,
    /// Session kinds with weights, e.g. `[(Ws, 4), (Lanes(3), 2), (Stored, 1), (Http, 1)]`.
    pub mix: Vec<(Kind, u32)>,
    /// `metadata.mock_deltas`.
    pub deltas: u32,
    /// Per-event deadline (a response silent this long counts as hung).
    pub event_timeout: Duration,
    /// First session number (keeps tags unique across runs against one gateway).
    pub first_session: u64,
    /// Misbehaviour of some clients, switched by a fault row's schedule.
    pub client_fault: Option<Arc<ClientFaultSwitch>>,
}

/// Parses a mix like `ws:4,lanes3:2,stored:1,http:1` (`lanesN`: N named lanes).
pub fn parse_mix(text: &str) -> Result<Vec<(Kind, u32)>, Failure> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, weight) = part.split_once(':').unwrap_or((part, "1"));
            let weight: u32 = weight
                .parse()
                .map_err(|_| Failure::new(format!("mix {part:?}: bad weight")))?;
            let kind = match name {
                "ws" => Kind::Ws,
                "stored" => Kind::Stored,
                "http" => Kind::Http,
                lanes => match lanes.strip_prefix("lanes").map(str::parse) {
                    Some(Ok(n)) if n > 0 => Kind::Lanes(n),
                    _ => return Err(Failure::new(format!("mix {part:?}: unknown kind"))),
                },
            };
            Ok((kind, weight))
        })
        .collect()
}

/// The kind of session number `n` (weighted round robin over the mix).
pub fn kind_of(mix: &[(Kind, u32)], n: u64) -> Kind {
    let total: u64 = mix.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut at = n % total.max(1);
    for (kind, weight) in mix {
        if at < u64::from(*weight) {
            return *kind;
        }
        at -= u64::from(*weight);
    }
    Kind::Ws
}

/// What a load saw, overall and per kind.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    /// Sessions run.
    pub sessions: usize,
    /// Wall time, ms.
    pub wall_ms: u64,
    /// Everything.
    pub total: Tally,
    /// Per kind, in mix order.
    pub by_kind: Vec<KindTally>,
}

/// The tally of one session kind.
#[derive(Debug, Clone, Serialize)]
pub struct KindTally {
    /// `ws`, `lanesN`, `stored` or `http`.
    pub kind: String,
    /// Its tally.
    #[serde(flatten)]
    pub tally: Tally,
}

/// Runs the load to its end. `epoch` is the instant failure windows are measured from.
pub async fn run(plan: &LoadPlan, epoch: Instant) -> LoadResult {
    let started = Instant::now();
    let until = plan.duration.map(|d| started + d);
    let plan = Arc::new(plan.clone());
    let mut tasks = JoinSet::new();
    for n in 0..plan.sessions as u64 {
        let plan = plan.clone();
        tasks.spawn(async move {
            let kind = kind_of(&plan.mix, n);
            let session = Plan {
                ws_url: plan.ws_url.clone(),
                http_base: plan.http_base.clone(),
                key: plan.key.clone(),
                session: plan.first_session + n,
                kind,
                turns: plan.turns,
                until,
                deltas: plan.deltas,
                event_timeout: plan.event_timeout,
                client_fault: plan.client_fault.clone(),
            };
            (kind, session::run(&session, epoch).await)
        });
    }
    let mut total = Tally::default();
    let mut by_kind: Vec<(Kind, Tally)> = plan
        .mix
        .iter()
        .map(|(k, _)| (*k, Tally::default()))
        .collect();
    while let Some(joined) = tasks.join_next().await {
        let Ok((kind, tally)) = joined else { continue };
        total.merge(&tally);
        if let Some((_, t)) = by_kind.iter_mut().find(|(k, _)| *k == kind) {
            t.merge(&tally);
        }
    }
    LoadResult {
        sessions: plan.sessions,
        wall_ms: started.elapsed().as_millis() as u64,
        total,
        by_kind: by_kind
            .into_iter()
            .map(|(kind, tally)| KindTally {
                kind: kind.label(),
                tally,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_deals_kinds_by_weight() {
        let mix = parse_mix("ws:2,lanes3:1,http:1").expect("mix");
        assert_eq!(
            mix,
            vec![(Kind::Ws, 2), (Kind::Lanes(3), 1), (Kind::Http, 1)]
        );
        let dealt: Vec<Kind> = (0..4).map(|n| kind_of(&mix, n)).collect();
        assert_eq!(dealt, [Kind::Ws, Kind::Ws, Kind::Lanes(3), Kind::Http]);
        assert!(parse_mix("lanes0:1").is_err());
        assert!(parse_mix("carrier:1").is_err());
    }
}
