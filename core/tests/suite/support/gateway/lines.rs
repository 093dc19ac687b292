//! The gateway trace's lines: one per input or output of an HTTP turn, naming only what the
//! gateway decides on (the snapshots of `http::*` and `trace_reports` are made of these).

use serde_json::Value;
use wsv2_core::http::{HttpEvent, HttpInput, HttpTransmit, HttpTurnRequest};
use wsv2_core::turn::{Answer, ResponseBind, SlotRequest, TurnEvent};

pub fn body_summary(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let mut parts = Vec::new();
            for key in [
                "stream",
                "store",
                "previous_response_id",
                "stream_id",
                "background",
            ] {
                if let Some(x) = v.get(key) {
                    parts.push(format!("{key}={x}"));
                }
            }
            parts.join(" ")
        }
        Err(_) => "<invalid json>".to_owned(),
    }
}

pub fn event_summary(v: &Value) -> String {
    let ty = v["type"].as_str().unwrap_or("?");
    match (v["response"]["id"].as_str(), v["error"]["code"].as_str()) {
        (Some(id), _) => format!("{ty} {id}"),
        (_, Some(code)) => format!("{ty} {code}"),
        _ => ty.to_owned(),
    }
}

pub fn create_summary(v: &Value) -> String {
    let mut s = format!("{} model={}", v["type"].as_str().unwrap_or("?"), v["model"]);
    if let Some(p) = v.get("previous_response_id") {
        s.push_str(&format!(" prev={p}"));
    }
    s
}

pub fn transmit_summary(t: &HttpTransmit) -> String {
    match t {
        HttpTransmit::Head {
            status,
            content_type,
            retry_after,
        } => format!(
            "head {status} {}{}",
            content_type.as_str(),
            retry_after.map_or(String::new(), |r| format!(" retry-after={r}"))
        ),
        HttpTransmit::Body(b) => {
            if let Some(rest) = b.strip_prefix(b"event: ") {
                let end = rest.iter().position(|c| *c == b'\n').unwrap_or(rest.len());
                format!("sse {}", String::from_utf8_lossy(&rest[..end]))
            } else {
                let v: Value = serde_json::from_slice(b).unwrap_or(Value::Null);
                match v["error"]["code"].as_str() {
                    Some(code) => format!("json error {code}"),
                    None if v["error"].is_object() => "json error null".to_owned(),
                    None => format!("json response {}", v["id"].as_str().unwrap_or("?")),
                }
            }
        }
        HttpTransmit::End => "end".to_owned(),
        HttpTransmit::Forward { account, .. } => format!("forward {account}"),
        HttpTransmit::PassThrough => "pass-through".to_owned(),
        HttpTransmit::DiscardForward => "discard-forward".to_owned(),
        HttpTransmit::Upstream { conn, .. } => format!("upstream {conn}"),
    }
}

pub fn input_summary(i: &HttpInput) -> String {
    match i {
        HttpInput::Admission(a) => format!(
            "admission {} {} local={} preferred={}",
            a.common.account,
            a.transport,
            a.connection_local,
            a.preferred.as_ref().map_or("-", |p| p.as_str())
        ),
        HttpInput::Answer(Answer::Refused(r)) => format!("refused {r:?}"),
        HttpInput::Answer(Answer::Lease(l)) => format!(
            "lease {}{}{}",
            l.record.id,
            if l.fresh { " fresh" } else { "" },
            if l.preferred_hit {
                " preferred-hit"
            } else {
                ""
            }
        ),
        HttpInput::Answer(Answer::LeaseRefused(r)) => format!("lease refused {r:?}"),
        HttpInput::Answer(Answer::SlotGranted(_)) => "slot granted".to_owned(),
    }
}

pub fn command_summary(c: &HttpTurnRequest) -> String {
    match c {
        HttpTurnRequest::Open(_) => "open".to_owned(),
        HttpTurnRequest::Schedule {
            previous, exclude, ..
        } => format!(
            "schedule prev={} exclude={exclude:?}",
            previous.as_ref().map_or("-", |p| p.as_str())
        ),
        HttpTurnRequest::Acquire {
            account, preferred, ..
        } => format!(
            "acquire {account} preferred={}",
            preferred.as_ref().map_or("-", |p| p.as_str())
        ),
        HttpTurnRequest::Slot(SlotRequest::Acquire { account, .. }) => {
            format!("acquire slot {account}")
        }
        HttpTurnRequest::Slot(SlotRequest::CancelWait { account, .. }) => {
            format!("cancel slot wait {account}")
        }
        HttpTurnRequest::Slot(SlotRequest::Release { account }) => {
            format!("release slot {account}")
        }
        HttpTurnRequest::Release { release, hold } => format!(
            "release {} reusable={} hold={}",
            release.record.id,
            release.reusable,
            hold.as_ref().map_or("-", |h| h.as_str())
        ),
        HttpTurnRequest::Bind(ResponseBind {
            response,
            account,
            conn,
            store,
            ..
        }) => format!("bind {} {account} {conn} store={store}", response.as_str()),
        HttpTurnRequest::Close => "close".to_owned(),
        HttpTurnRequest::AbandonWrites { conn } => format!("abandon writes {conn}"),
    }
}

pub fn event_line(e: &HttpEvent) -> String {
    match e {
        HttpEvent::Turn(TurnEvent::ResponseEnded(r)) => format!(
            "response ended {} {} usage={:?} drained={}",
            r.response.as_ref().map_or("-", |p| p.as_str()),
            r.outcome.as_str(),
            r.usage.map(|u| u.total_tokens),
            r.drained
        ),
        HttpEvent::Turn(TurnEvent::Retrying {
            account,
            failure,
            switch_account,
            ..
        }) => format!(
            "retrying {account} {} switch={switch_account}",
            failure.as_str()
        ),
        HttpEvent::GaveUp { reason } => format!("gave up {}", reason.as_str()),
        HttpEvent::Turn(other) => format!("{other:?}"),
        other => format!("{other:?}"),
    }
}
