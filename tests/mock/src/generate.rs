//! The event stream of one response (protocol.md §3.4), with the per-response faults that act
//! inside a stream.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::emitter::{Emitter, Gone, Outgoing};
use crate::ids::{IdGen, IdKind};
use crate::request::{Fault, OutputKind};
use crate::response::{ResponseSpec, ResponseState, Usage, count_tokens};
use crate::store::Context;
use crate::switches::RuntimeFault;

/// Text the deltas are cut from, cycled.
const FILLER: &[u8] = b"The quick brown fox jumps over the lazy dog. ";

/// Faults that cut a stream do so after this many deltas.
const CUT_AFTER_DELTAS: usize = 2;

/// Everything needed to stream one response.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) spec: ResponseSpec,
    /// Inputs so far, including this request's new input.
    pub(crate) context: Context,
    /// Tokens of `context` that came from the connection cache.
    pub(crate) cached_tokens: u64,
    pub(crate) generate: bool,
    pub(crate) output: OutputKind,
    pub(crate) encrypted_reasoning: bool,
    pub(crate) fault: Option<Fault>,
    pub(crate) fault_delay: Duration,
    pub(crate) deltas: usize,
    pub(crate) delta_bytes: usize,
    pub(crate) delta_interval: Duration,
    pub(crate) tool_name: String,
    /// The mock's runtime fault (a blackholed response waits for it to change).
    pub(crate) switched: watch::Receiver<Option<RuntimeFault>>,
}

/// A `response.steer` routed to a running response.
#[derive(Debug)]
pub(crate) struct SteerRequest {
    /// The steer's `input`, as sent.
    pub(crate) raw_input: Value,
}

/// How a response ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `response.completed` (already cached through the remember hook).
    Completed,
    /// `response.incomplete` (`max_output_tokens`; already cached).
    Incomplete,
    /// `response.incomplete` (`steered`); a successor must follow on the lane.
    Steered {
        output: Vec<Value>,
        steer: SteerRequest,
    },
    /// `response.failed`.
    Failed,
    /// The connection or stream ended (peer gone, drop or close fault).
    Ended,
}

enum Halt {
    Gone,
    Steered(SteerRequest),
    Cut,
}

impl From<Gone> for Halt {
    fn from(_: Gone) -> Self {
        Self::Gone
    }
}

/// The item being streamed, for partial outputs on cut or steer.
struct OpenItem {
    item: Value,
    text: String,
}

/// Called with the final output right before a cacheable terminal event goes out, so a
/// continuation sent the moment the client sees it (even from another lane) finds it cached.
pub(crate) type Remember<'a> = &'a (dyn Fn(&[Value]) + Sync);

/// Streams one response.
pub(crate) struct Generator<'a> {
    plan: &'a Plan,
    remember: Remember<'a>,
    em: &'a mut Emitter,
    steer: Option<&'a mut mpsc::Receiver<SteerRequest>>,
    ids: &'a IdGen,
    output: Vec<Value>,
    open: Option<OpenItem>,
    deltas_sent: usize,
    filler_at: usize,
    output_bytes: usize,
    reasoning_bytes: usize,
}

impl<'a> Generator<'a> {
    pub(crate) fn new(
        plan: &'a Plan,
        em: &'a mut Emitter,
        steer: Option<&'a mut mpsc::Receiver<SteerRequest>>,
        ids: &'a IdGen,
        remember: Remember<'a>,
    ) -> Self {
        Self {
            plan,
            remember,
            em,
            steer,
            ids,
            output: Vec::new(),
            open: None,
            deltas_sent: 0,
            filler_at: 0,
            output_bytes: 0,
            reasoning_bytes: 0,
        }
    }

    /// Runs the response to its end.
    pub(crate) async fn run(mut self) -> Outcome {
        match self.stream().await {
            Ok(outcome) => outcome,
            Err(Halt::Gone) => Outcome::Ended,
            Err(Halt::Steered(steer)) => self.steered(steer).await.unwrap_or(Outcome::Ended),
            Err(Halt::Cut) => self.cut().await.unwrap_or(Outcome::Ended),
        }
    }

    async fn stream(&mut self) -> Result<Outcome, Halt> {
        let plan = self.plan;
        if plan.fault == Some(Fault::SlowFirstEvent) {
            self.pause(Some(plan.fault_delay), false).await?;
        }
        if plan.fault == Some(Fault::Blackhole) {
            let mut switched = plan.switched.clone();
            tokio::select! {
                _ = switched.wait_for(|f| *f != Some(RuntimeFault::Blackhole)) => {}
                () = self.em.closed() => return Err(Halt::Gone),
            }
        }
        self.em.start_response();
        let created = plan.spec.object(&ResponseState::in_progress());
        self.em
            .emit(json!({"type": "response.created", "response": created}))
            .await?;
        if !plan.generate {
            let usage = Usage::default();
            let done = plan.spec.object(&ResponseState::terminal(
                "completed",
                &[],
                &usage,
                self.ids.now_secs(),
            ));
            (self.remember)(&[]);
            self.em
                .emit(json!({"type": "response.completed", "response": done}))
                .await?;
            return Ok(Outcome::Completed);
        }
        if plan.fault == Some(Fault::StallLane) {
            self.pause(None, true).await?;
        }
        self.em
            .emit(json!({"type": "response.in_progress", "response": created}))
            .await?;
        if self.cut_due() {
            return Err(Halt::Cut);
        }
        if plan.output == OutputKind::Reasoning {
            self.reasoning_item().await?;
        }
        match plan.output {
            OutputKind::FunctionCall => self.function_call_item().await?,
            OutputKind::Text | OutputKind::Reasoning => self.message_item().await?,
        }
        let usage = self.usage();
        let done = plan.spec.object(&ResponseState::terminal(
            "completed",
            &self.output,
            &usage,
            self.ids.now_secs(),
        ));
        (self.remember)(&self.output);
        self.em
            .emit(json!({"type": "response.completed", "response": done}))
            .await?;
        if plan.fault == Some(Fault::TailPacket) {
            self.tail_packet().await?;
        }
        Ok(Outcome::Completed)
    }

    async fn message_item(&mut self) -> Result<(), Halt> {
        let index = self.output.len();
        let id = self.ids.next(IdKind::Message);
        let added = json!({"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []});
        self.em
            .emit(
                json!({"type": "response.output_item.added", "output_index": index, "item": added}),
            )
            .await?;
        let empty_part = output_text_part("");
        self.em
            .emit(
                json!({"type": "response.content_part.added", "item_id": id, "output_index": index,
                "content_index": 0, "part": empty_part}),
            )
            .await?;
        self.open = Some(OpenItem {
            item: added,
            text: String::new(),
        });
        for _ in 0..self.plan.deltas {
            let delta = self.filler(self.plan.delta_bytes);
            let event = json!({"type": "response.output_text.delta", "item_id": id, "output_index": index,
                "content_index": 0, "delta": delta, "logprobs": []});
            self.delta(event, &delta, false).await?;
        }
        self.close_message("completed").await
    }

    /// Emits the done events of the open message with `status` and moves it to the output.
    async fn close_message(&mut self, status: &str) -> Result<(), Halt> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let index = self.output.len();
        let id = open.item["id"].clone();
        self.em
            .emit(
                json!({"type": "response.output_text.done", "item_id": id, "output_index": index,
                "content_index": 0, "text": open.text, "logprobs": []}),
            )
            .await?;
        let part = output_text_part(&open.text);
        self.em
            .emit(
                json!({"type": "response.content_part.done", "item_id": id, "output_index": index,
                "content_index": 0, "part": part}),
            )
            .await?;
        let item = finish_item(&open, status);
        self.em
            .emit(json!({"type": "response.output_item.done", "output_index": index, "item": item}))
            .await?;
        self.output.push(item);
        Ok(())
    }

    async fn function_call_item(&mut self) -> Result<(), Halt> {
        let index = self.output.len();
        let id = self.ids.next(IdKind::FunctionCall);
        let call_id = self.ids.next(IdKind::CallId);
        let added = json!({"id": id, "type": "function_call", "status": "in_progress", "call_id": call_id,
            "name": self.plan.tool_name, "arguments": ""});
        self.em
            .emit(
                json!({"type": "response.output_item.added", "output_index": index, "item": added}),
            )
            .await?;
        self.open = Some(OpenItem {
            item: added,
            text: String::new(),
        });
        let total = (self.plan.deltas * self.plan.delta_bytes).max(14);
        let filler = self.filler(total - 13);
        let arguments = serde_json::to_string(&json!({"input": filler})).unwrap_or_default();
        let chunk = arguments.len().div_ceil(self.plan.deltas.max(1));
        for piece in arguments
            .as_bytes()
            .chunks(chunk.max(1))
            .take(self.plan.deltas)
        {
            let delta = String::from_utf8_lossy(piece).into_owned();
            let event = json!({"type": "response.function_call_arguments.delta", "item_id": id,
                "output_index": index, "delta": delta});
            self.delta(event, &delta, false).await?;
        }
        if let Some(open) = &mut self.open {
            open.text = arguments.clone();
        }
        self.em
            .emit(json!({"type": "response.function_call_arguments.done", "item_id": id, "output_index": index,
                "name": self.plan.tool_name, "arguments": arguments}))
            .await?;
        let item = finish_item(&self.open.take().ok_or(Halt::Gone)?, "completed");
        self.em
            .emit(json!({"type": "response.output_item.done", "output_index": index, "item": item}))
            .await?;
        self.output.push(item);
        Ok(())
    }

    async fn reasoning_item(&mut self) -> Result<(), Halt> {
        let index = self.output.len();
        let id = self.ids.next(IdKind::Reasoning);
        let added = json!({"id": id, "type": "reasoning", "summary": []});
        self.em
            .emit(
                json!({"type": "response.output_item.added", "output_index": index, "item": added}),
            )
            .await?;
        self.em
            .emit(json!({"type": "response.reasoning_summary_part.added", "item_id": id, "output_index": index,
                "summary_index": 0, "part": {"type": "summary_text", "text": ""}}))
            .await?;
        self.open = Some(OpenItem {
            item: added,
            text: String::new(),
        });
        for _ in 0..self.plan.deltas {
            let delta = self.filler(self.plan.delta_bytes);
            let event = json!({"type": "response.reasoning_summary_text.delta", "item_id": id,
                "output_index": index, "summary_index": 0, "delta": delta});
            self.delta(event, &delta, true).await?;
        }
        let open = self.open.take().ok_or(Halt::Gone)?;
        self.em
            .emit(json!({"type": "response.reasoning_summary_text.done", "item_id": id, "output_index": index,
                "summary_index": 0, "text": open.text}))
            .await?;
        self.em
            .emit(json!({"type": "response.reasoning_summary_part.done", "item_id": id, "output_index": index,
                "summary_index": 0, "part": {"type": "summary_text", "text": open.text}}))
            .await?;
        let mut item = finish_item(&open, "completed");
        if self.plan.encrypted_reasoning {
            item["encrypted_content"] = json!(format!("enc_mock_{id}_{}", open.text.len()));
        }
        self.em
            .emit(json!({"type": "response.output_item.done", "output_index": index, "item": item}))
            .await?;
        self.output.push(item);
        Ok(())
    }

    /// Sends one delta: paced, stamped, steerable, and the point where cutting faults strike.
    async fn delta(&mut self, mut event: Value, text: &str, reasoning: bool) -> Result<(), Halt> {
        if !self.plan.delta_interval.is_zero() {
            self.pause(Some(self.plan.delta_interval), true).await?;
        }
        if let Some(steer) = self.steer.as_mut().and_then(|rx| rx.try_recv().ok()) {
            return Err(Halt::Steered(steer));
        }
        if let Some(ts) = self.ids.timestamp_ns() {
            event["mock_ts_ns"] = ts.into();
        }
        self.em.emit(event).await?;
        if let Some(open) = &mut self.open {
            open.text.push_str(text);
        }
        if reasoning {
            self.reasoning_bytes += text.len();
        } else {
            self.output_bytes += text.len();
        }
        self.deltas_sent += 1;
        if self.cut_due() {
            return Err(Halt::Cut);
        }
        Ok(())
    }

    fn cut_due(&self) -> bool {
        self.plan.fault.is_some_and(Fault::cuts_stream)
            && self.deltas_sent == CUT_AFTER_DELTAS.min(self.plan.deltas)
    }

    /// Waits `duration` (or forever); a steer (when `steerable`) or the end of the connection
    /// interrupts the wait.
    async fn pause(&mut self, duration: Option<Duration>, steerable: bool) -> Result<(), Halt> {
        let em = &*self.em;
        let steer = &mut self.steer;
        let sleep = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let steered = async {
            match steer.as_mut() {
                Some(rx) if steerable => rx.recv().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => Ok(()),
            Some(request) = steered => Err(Halt::Steered(request)),
            () = em.closed() => Err(Halt::Gone),
        }
    }

    /// The cutting faults, once `CUT_AFTER_DELTAS` deltas are out.
    async fn cut(&mut self) -> Result<Outcome, Gone> {
        match self.plan.fault {
            Some(Fault::Failed) => {
                let output = self.partial_output();
                let usage = self.usage();
                let mut state =
                    ResponseState::terminal("failed", &output, &usage, self.ids.now_secs());
                state.error = json!({"code": "server_error",
                    "message": "The server had an error processing your request. (mock fault failed)"});
                let response = self.plan.spec.object(&state);
                self.em
                    .emit(json!({"type": "response.failed", "response": response}))
                    .await?;
                Ok(Outcome::Failed)
            }
            Some(Fault::Incomplete) => {
                match self.plan.output {
                    OutputKind::FunctionCall => {
                        let output = self.partial_output();
                        self.output = output;
                        self.open = None;
                    }
                    _ => self.close_message("incomplete").await.map_err(|_| Gone)?,
                }
                let usage = self.usage();
                let mut state = ResponseState::terminal(
                    "incomplete",
                    &self.output,
                    &usage,
                    self.ids.now_secs(),
                );
                state.incomplete_reason = Some("max_output_tokens");
                let response = self.plan.spec.object(&state);
                (self.remember)(&self.output);
                self.em
                    .emit(json!({"type": "response.incomplete", "response": response}))
                    .await?;
                Ok(Outcome::Incomplete)
            }
            Some(Fault::DropMidStream) => {
                self.em.control(Outgoing::Drop).await?;
                Ok(Outcome::Ended)
            }
            Some(Fault::Close1011MidStream) => {
                self.em
                    .control(Outgoing::Close {
                        code: 1011,
                        reason: "mock fault close_1011_mid_stream",
                    })
                    .await?;
                Ok(Outcome::Ended)
            }
            _ => Ok(Outcome::Ended),
        }
    }

    /// `response.steer.accepted`, then `response.incomplete` (`steered`) with the partial output.
    async fn steered(&mut self, steer: SteerRequest) -> Result<Outcome, Gone> {
        let steer_id = self.ids.next(IdKind::Steer);
        self.em
            .emit(json!({"type": "response.steer.accepted",
                "steer": {"id": steer_id, "previous_response_id": self.plan.spec.id}}))
            .await?;
        let output = self.partial_output();
        let usage = self.usage();
        let mut state = ResponseState::terminal("incomplete", &output, &usage, self.ids.now_secs());
        state.incomplete_reason = Some("steered");
        let response = self.plan.spec.object(&state);
        (self.remember)(&output);
        self.em
            .emit(json!({"type": "response.incomplete", "response": response}))
            .await?;
        Ok(Outcome::Steered { output, steer })
    }

    async fn tail_packet(&mut self) -> Result<(), Halt> {
        let item_id = self
            .output
            .iter()
            .rev()
            .find_map(|item| item.get("id").cloned())
            .unwrap_or_else(|| json!("msg_tail"));
        let index = self.output.len().saturating_sub(1);
        self.em
            .emit(json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": index,
                "content_index": 0, "delta": "tail", "logprobs": []}))
            .await?;
        Ok(())
    }

    /// Finished items plus the open one marked `incomplete`.
    fn partial_output(&self) -> Vec<Value> {
        let mut output = self.output.clone();
        if let Some(open) = &self.open {
            output.push(finish_item(open, "incomplete"));
        }
        output
    }

    fn usage(&self) -> Usage {
        let reasoning = (self.reasoning_bytes as u64).div_ceil(4);
        Usage {
            input_tokens: count_tokens(&self.plan.context),
            cached_tokens: self.plan.cached_tokens,
            output_tokens: (self.output_bytes as u64).div_ceil(4) + reasoning,
            reasoning_tokens: reasoning,
        }
    }

    fn filler(&mut self, len: usize) -> String {
        let text: Vec<u8> = (0..len)
            .map(|i| FILLER[(self.filler_at + i) % FILLER.len()])
            .collect();
        self.filler_at = (self.filler_at + len) % FILLER.len();
        String::from_utf8_lossy(&text).into_owned()
    }
}

fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// The final shape of an item with the text streamed so far.
fn finish_item(open: &OpenItem, status: &str) -> Value {
    let mut item = open.item.clone();
    match item["type"].as_str() {
        Some("message") => {
            item["status"] = status.into();
            item["content"] = json!([output_text_part(&open.text)]);
        }
        Some("function_call") => {
            item["status"] = status.into();
            item["arguments"] = open.text.clone().into();
        }
        Some("reasoning") => {
            item["summary"] = json!([{"type": "summary_text", "text": open.text}]);
        }
        _ => {}
    }
    item
}
