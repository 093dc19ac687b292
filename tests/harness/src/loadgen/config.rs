//! What a load run does: targets, sessions × turns, warm-up, think time, transport.

use std::time::Duration;

use crate::Failure;

/// The transport a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One WebSocket per session, turns chained with `previous_response_id` on it.
    Ws,
    /// `POST /v1/responses` with `stream: true` per turn (SSE), chained with stored ids.
    Sse,
}

/// One named target; both URLs are derived from whichever form was given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadTarget {
    /// The name shown in the table and the JSON.
    pub name: String,
    /// `ws://HOST/v1/responses`.
    pub ws_url: String,
    /// `http://HOST/v1`.
    pub http_base: String,
}

impl LoadTarget {
    /// Parses `NAME=URL`, where URL is `ws://HOST/v1/responses`, `ws://HOST/v1` or `http://HOST/v1`.
    pub fn parse(spec: &str) -> Result<Self, Failure> {
        let (name, url) = spec
            .split_once('=')
            .ok_or_else(|| Failure::new(format!("--target {spec:?}: expected NAME=URL")))?;
        Self::from_url(name, url)
    }

    /// A target from a name and a URL of either form.
    pub fn from_url(name: &str, url: &str) -> Result<Self, Failure> {
        let url = url.trim_end_matches('/');
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Failure::new(format!("target URL {url:?} has no scheme")))?;
        let http_scheme = match scheme {
            "ws" | "http" => "http",
            "wss" | "https" => "https",
            other => {
                return Err(Failure::new(format!(
                    "unsupported scheme {other:?} in {url:?}"
                )));
            }
        };
        let base = rest.strip_suffix("/responses").unwrap_or(rest);
        let ws_scheme = if http_scheme == "http" { "ws" } else { "wss" };
        Ok(Self {
            name: name.to_owned(),
            ws_url: format!("{ws_scheme}://{base}/responses"),
            http_base: format!("{http_scheme}://{base}"),
        })
    }
}

/// The whole load plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadConfig {
    /// Targets, visited in alternating order each round.
    pub targets: Vec<LoadTarget>,
    /// Bearer key for every session.
    pub api_key: String,
    /// Transport.
    pub mode: Mode,
    /// Concurrent sessions per target per round.
    pub sessions: usize,
    /// Measured turns per session.
    pub turns: usize,
    /// Turns per session before measuring (excluded from the statistics, still checked).
    pub warmup_turns: usize,
    /// Rounds; each round runs every target once.
    pub rounds: usize,
    /// Pause between a session's turns (simulated user think time).
    #[serde(with = "duration_ms")]
    pub think_time: Duration,
    /// `metadata.mock_deltas` sent with every create (`None` = the upstream's default).
    pub deltas: Option<u32>,
    /// How long one event may take before the turn counts as an error.
    #[serde(with = "duration_ms")]
    pub event_timeout: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            api_key: "sk-mock".into(),
            mode: Mode::Ws,
            sessions: 10,
            turns: 10,
            warmup_turns: 1,
            rounds: 1,
            think_time: Duration::ZERO,
            deltas: None,
            event_timeout: Duration::from_secs(30),
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_accept_ws_and_http_forms() {
        let want = LoadTarget {
            name: "gw".into(),
            ws_url: "ws://127.0.0.1:9/v1/responses".into(),
            http_base: "http://127.0.0.1:9/v1".into(),
        };
        assert_eq!(
            LoadTarget::parse("gw=ws://127.0.0.1:9/v1/responses").unwrap(),
            want
        );
        assert_eq!(
            LoadTarget::parse("gw=http://127.0.0.1:9/v1/").unwrap(),
            want
        );
        assert_eq!(LoadTarget::parse("gw=ws://127.0.0.1:9/v1").unwrap(), want);
        assert!(LoadTarget::parse("no-equals").is_err());
        assert!(LoadTarget::parse("x=ftp://h/v1").is_err());
    }
}
