//! One `response.create` on a WebSocket connection, from dequeue to its last event: request
//! checks, continuation lookup, streaming, caching, eviction and steer successors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::emitter::{Emitter, Gone, Outgoing};
use crate::errors::ApiError;
use crate::generate::{Generator, Outcome, Plan, SteerRequest};
use crate::ids::IdKind;
use crate::request::{CreateRequest, Fault, LaneKey, normalise_input};
use crate::response::{ResponseSpec, count_tokens};
use crate::server::Shared;
use crate::store::{ConnCache, Context};

/// Pending steers a running response accepts before `too_many_pending_steers`.
pub(crate) const STEER_QUEUE: usize = 4;

/// State of one WebSocket connection that its response jobs share.
#[derive(Debug)]
pub(crate) struct ConnShared {
    pub(crate) id: u64,
    pub(crate) server: Arc<Shared>,
    pub(crate) out: mpsc::Sender<Outgoing>,
    pub(crate) cache: Mutex<ConnCache>,
    /// Responses currently streaming, by id, for routing `response.steer`.
    pub(crate) active: Mutex<HashMap<String, ActiveResponse>>,
}

/// A streaming response that can be steered.
#[derive(Debug)]
pub(crate) struct ActiveResponse {
    pub(crate) lane: LaneKey,
    pub(crate) steer: mpsc::Sender<SteerRequest>,
}

impl ConnShared {
    pub(crate) fn emitter(&self, lane: LaneKey) -> Emitter {
        Emitter::new(
            self.out.clone(),
            lane,
            self.id,
            self.server.recorder.clone(),
        )
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ConnCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, ActiveResponse>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where the context of a continuation comes from.
enum Parent {
    /// No `previous_response_id`.
    None,
    /// The latest response of `lane` on this connection.
    Cached { lane: LaneKey, context: Context },
    /// Rehydrated from the process-wide store (`store: true`).
    Stored { context: Context },
    /// Neither: `previous_response_not_found`.
    Missing(String),
}

/// Runs one job; returns its lane so the scheduler can free it.
pub(crate) async fn run_job(
    conn: Arc<ConnShared>,
    lane: LaneKey,
    request: CreateRequest,
) -> LaneKey {
    let mut em = conn.emitter(lane.clone());
    // Gone means the connection ended; nothing is left to tell anyone.
    let _ = run(&conn, &lane, request, &mut em).await;
    lane
}

async fn run(
    conn: &ConnShared,
    lane: &LaneKey,
    mut request: CreateRequest,
    em: &mut Emitter,
) -> Result<(), Gone> {
    let parent = resolve(conn, &request);
    let same_lane_parent =
        matches!(&parent, Parent::Cached { lane: parent_lane, .. } if parent_lane == lane);
    let rejection = if request.background {
        Some(ApiError::background_unsupported())
    } else if let Err(name) = &request.fault {
        Some(ApiError {
            code: Some("invalid_value"),
            message: format!("Unknown metadata.mock_fault '{name}'."),
            param: Some("metadata"),
            ..ApiError::fault_400()
        })
    } else {
        match request.known_fault() {
            Some(Fault::Error400) => Some(ApiError::fault_400()),
            Some(Fault::Error429) => Some(ApiError::fault_429()),
            Some(Fault::Error500) => Some(ApiError::fault_500()),
            _ => None,
        }
    };
    if let Some(error) = rejection {
        // A failed same-lane continuation evicts its parent; a cross-lane fork keeps it.
        if same_lane_parent && let Some(id) = &request.previous_response_id {
            conn.cache().evict(lane, id);
        }
        return em.error(&error).await;
    }
    let (mut prior, mut cached_tokens) = match parent {
        Parent::None => (Vec::new(), 0),
        Parent::Cached { context, .. } => (context.to_vec(), count_tokens(&context)),
        Parent::Stored { context } => (context.to_vec(), 0),
        Parent::Missing(id) => return em.error(&ApiError::previous_response_not_found(&id)).await,
    };
    loop {
        prior.extend(request.input.iter().cloned());
        let plan = build_plan(&conn.server, &request, Arc::new(prior), cached_tokens);
        let id = plan.spec.id.clone();
        let (steer_tx, mut steer_rx) = mpsc::channel(STEER_QUEUE);
        conn.active().insert(
            id.clone(),
            ActiveResponse {
                lane: lane.clone(),
                steer: steer_tx,
            },
        );
        let remember = |output: &[Value]| {
            let full = full_context(&plan.context, output);
            conn.cache().put(lane.clone(), id.clone(), full.clone());
            if plan.spec.store {
                conn.server.store.put(id.clone(), full);
            }
        };
        let outcome = Generator::new(&plan, em, Some(&mut steer_rx), &conn.server.ids, &remember)
            .run()
            .await;
        conn.active().remove(&id);
        steer_rx.close();
        while let Ok(late) = steer_rx.try_recv() {
            em.emit(steer_failed(
                "response_already_completed",
                "The response already completed.",
                &id,
                late.raw_input,
            ))
            .await?;
        }
        match outcome {
            Outcome::Completed | Outcome::Incomplete => return Ok(()),
            Outcome::Failed => {
                if same_lane_parent && let Some(parent) = &request.previous_response_id {
                    conn.cache().evict(lane, parent);
                }
                return Ok(());
            }
            Outcome::Ended => return Err(Gone),
            Outcome::Steered { output, steer } => {
                // The automatic successor continues the steered response on the same lane.
                let full = full_context(&plan.context, &output);
                cached_tokens = count_tokens(&full);
                prior = full.to_vec();
                request = request.successor(id, normalise_input(Some(&steer.raw_input)));
            }
        }
    }
}

fn resolve(conn: &ConnShared, request: &CreateRequest) -> Parent {
    let Some(id) = &request.previous_response_id else {
        return Parent::None;
    };
    if let Some((lane, context)) = conn.cache().lookup(id) {
        return Parent::Cached { lane, context };
    }
    if request.store
        && let Some(context) = conn.server.store.get(id)
    {
        return Parent::Stored { context };
    }
    Parent::Missing(id.clone())
}

fn full_context(context: &Context, output: &[Value]) -> Context {
    let mut full = Vec::with_capacity(context.len() + output.len());
    full.extend(context.iter().cloned());
    full.extend(output.iter().cloned());
    Arc::new(full)
}

/// The streaming plan of `request`, with a fresh response id.
pub(crate) fn build_plan(
    server: &Shared,
    request: &CreateRequest,
    context: Context,
    cached_tokens: u64,
) -> Plan {
    let cfg = &server.cfg;
    let spec = ResponseSpec::new(
        server.ids.next(IdKind::Response),
        server.ids.now_secs(),
        request,
    );
    let tool_name = request
        .body
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|tools| {
            tools
                .iter()
                .find_map(|t| t.get("name").and_then(Value::as_str))
        })
        .unwrap_or("mock_tool")
        .to_owned();
    Plan {
        spec,
        context,
        cached_tokens,
        generate: request.generate,
        output: request.output,
        encrypted_reasoning: request.encrypted_reasoning,
        fault: request.known_fault(),
        fault_delay: request.fault_delay(),
        deltas: request.deltas.unwrap_or(cfg.deltas),
        delta_bytes: cfg.delta_bytes,
        delta_interval: cfg.delta_interval,
        tool_name,
        switched: server.switches.watch(),
    }
}

/// `response.steer.failed` (protocol.md §2.4).
pub(crate) fn steer_failed(code: &str, message: &str, target: &str, input: Value) -> Value {
    json!({"type": "response.steer.failed",
        "error": {"type": "invalid_request_error", "code": code, "message": message},
        "steer": {"input": input, "previous_response_id": target}})
}

/// Routes a `response.steer` frame; answers failures itself.
pub(crate) async fn steer(
    conn: &ConnShared,
    frame: &serde_json::Map<String, Value>,
) -> Result<(), Gone> {
    let target = frame
        .get("previous_response_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let input = frame.get("input").cloned().unwrap_or(Value::Null);
    let valid_input = match &input {
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    };
    let route = conn
        .active()
        .get(&target)
        .map(|a| (a.lane.clone(), a.steer.clone()));
    let (lane, code, message) = match route {
        Some((lane, _)) if !valid_input => (
            lane,
            "invalid_input",
            "Steer input must be a non-empty string or list of user messages.",
        ),
        Some((lane, tx)) => match tx.try_send(SteerRequest {
            raw_input: input.clone(),
        }) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => (
                lane,
                "too_many_pending_steers",
                "Too many pending steers for this response.",
            ),
            Err(mpsc::error::TrySendError::Closed(_)) => (
                lane,
                "response_already_completed",
                "The response already completed.",
            ),
        },
        None if conn.cache().contains(&target) => (
            None,
            "response_already_completed",
            "The response already completed.",
        ),
        None => (
            None,
            "response_not_found",
            "No active response with this id on this connection.",
        ),
    };
    let mut em = conn.emitter(lane);
    em.emit(steer_failed(code, message, &target, input)).await
}
