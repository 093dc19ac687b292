//! What the mock saw and sent, as one JSON line per [`Record`].

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// In-memory copies beyond this count are dropped (the record file still gets every line).
const MEMORY_CAP: usize = 200_000;

/// Which side ended a WebSocket connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseSide {
    /// The client sent a close frame or its TCP stream ended.
    Client,
    /// The mock closed: a close frame (with code) or an abrupt drop (no code).
    Server,
}

/// One observation of the mock. Serialized with `"kind"` as the tag, one JSON object per line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// An accepted WebSocket upgrade.
    Handshake {
        /// Mock connection id, counting from 1 per mock instance.
        conn: u64,
        /// Request path without the query.
        path: String,
        /// Raw query string, if any.
        query: Option<String>,
        /// Lower-case header names; the `authorization` value is masked.
        headers: BTreeMap<String, String>,
    },
    /// A frame received on a WebSocket connection.
    Frame {
        /// Mock connection id.
        conn: u64,
        /// The parsed JSON; a non-JSON text frame is stored as a JSON string, a binary
        /// frame as `{"binary_len": N}`.
        frame: Value,
    },
    /// A plain HTTP request (POST, models, or an upgrade answered with an HTTP status).
    Http {
        /// HTTP method.
        method: String,
        /// Request path without the query.
        path: String,
        /// Lower-case header names; the `authorization` value is masked.
        headers: BTreeMap<String, String>,
        /// The JSON body, `null` when absent or not JSON.
        body: Value,
        /// The status the mock answered with.
        status: u16,
    },
    /// A terminal (`response.completed|failed|incomplete`) or `error` event the mock sent.
    Sent {
        /// Mock connection id (0 for HTTP POST streams).
        conn: u64,
        /// The response id, when the event belongs to one.
        response_id: Option<String>,
        /// The event type.
        r#type: String,
        /// `error.code` of an `error` event or of a failed response.
        code: Option<String>,
        /// `status` of an `error` event.
        status: Option<u16>,
        /// The lane, absent on the default lane.
        stream_id: Option<String>,
    },
    /// The end of a WebSocket connection.
    Close {
        /// Mock connection id.
        conn: u64,
        /// Who ended it.
        by: CloseSide,
        /// The close code, `null` for an abrupt end.
        code: Option<u16>,
    },
}

/// Sink for records: an optional JSON-lines file plus a bounded in-memory copy.
#[derive(Debug)]
pub(crate) struct Recorder {
    memory: Mutex<Vec<Record>>,
    file: Option<Mutex<BufWriter<File>>>,
    /// Bumped after every record, so waiters learn of new records without polling.
    pushed: tokio::sync::watch::Sender<u64>,
}

impl Recorder {
    /// Opens (appends to) `path` when given.
    pub(crate) fn new(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(path) => Some(Mutex::new(BufWriter::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            ))),
            None => None,
        };
        Ok(Self {
            memory: Mutex::new(Vec::new()),
            file,
            pushed: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Stores one record; the file line is flushed at once so other processes can follow it.
    pub(crate) fn push(&self, record: Record) {
        if let Some(file) = &self.file {
            let line = serde_json::to_string(&record).unwrap_or_default();
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            // A failing record file must not take the mock down; tests will notice missing lines.
            let _ = writeln!(file, "{line}").and_then(|()| file.flush());
        }
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        if memory.len() < MEMORY_CAP {
            memory.push(record);
        }
        drop(memory);
        self.pushed.send_modify(|n| *n += 1);
    }

    /// A receiver that changes after every new record.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.pushed.subscribe()
    }

    /// A copy of every record kept in memory so far.
    pub(crate) fn snapshot(&self) -> Vec<Record> {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Lower-cases header names, joins repeated values and masks credentials.
pub(crate) fn header_map(headers: &hyper::HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str().to_ascii_lowercase();
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let value = if name == "authorization" || name == "openai-api-key" || name == "api-key" {
            mask_credential(&value)
        } else {
            value
        };
        map.entry(name)
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    map
}

/// `Bearer sk-abcdefgh1234` becomes `Bearer ***1234`: enough to tell keys apart, not to use one.
pub(crate) fn mask_credential(value: &str) -> String {
    let (scheme, token) = match value.split_once(' ') {
        Some((scheme, token)) => (Some(scheme), token),
        None => (None, value),
    };
    let tail = if token.len() > 8 {
        &token[token.len() - 4..]
    } else {
        ""
    };
    match scheme {
        Some(scheme) => format!("{scheme} ***{tail}"),
        None => format!("***{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_last_four_characters_of_long_tokens() {
        assert_eq!(mask_credential("Bearer sk-abcdefgh1234"), "Bearer ***1234");
        assert_eq!(mask_credential("Bearer short"), "Bearer ***");
        assert_eq!(mask_credential("sk-abcdefgh1234"), "***1234");
    }

    #[test]
    fn records_serialize_with_the_kind_tag_and_type_field() {
        let line = serde_json::to_value(Record::Sent {
            conn: 3,
            response_id: Some("resp_1".into()),
            r#type: "response.completed".into(),
            code: None,
            status: None,
            stream_id: Some("a".into()),
        })
        .unwrap();
        assert_eq!(line["kind"], "sent");
        assert_eq!(line["type"], "response.completed");
        assert_eq!(line["stream_id"], "a");
        let back: Record = serde_json::from_value(line).unwrap();
        assert!(matches!(back, Record::Sent { conn: 3, .. }));
    }
}
