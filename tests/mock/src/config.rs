//! Mock configuration and the duration syntax of the command line.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that shapes one mock upstream instance.
///
/// Construct with struct-update syntax over [`Default`], e.g.
/// `MockConfig { api_key: "sk-test".into(), ..MockConfig::default() }`.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// The only bearer token accepted on upgrades and HTTP requests.
    pub api_key: String,
    /// Append one JSON line per [`crate::Record`] to this file.
    pub record: Option<PathBuf>,
    /// Run every response of a connection FIFO on one queue (launch OpenAI and xAI behaviour).
    pub serial: bool,
    /// Seeded ids, fixed `created_at`, no timestamps: outputs compare byte for byte.
    pub deterministic: bool,
    /// Number of delta events per streamed item (overridden per response by `metadata.mock_deltas`).
    pub deltas: usize,
    /// Size in bytes of each delta's text.
    pub delta_bytes: usize,
    /// Pause before each delta; zero streams as fast as the socket takes it.
    pub delta_interval: Duration,
    /// Connection lifetime; the next `response.create` after it gets `websocket_connection_limit_reached`.
    pub lifetime: Duration,
    /// When set, every WebSocket upgrade is answered with this HTTP status (426, 429, 500, …).
    pub upgrade_status: Option<u16>,
    /// At lifetime expiry, send the limit error unsolicited on an idle socket and close it.
    pub unsolicited_limit: bool,
    /// At lifetime expiry, cut the socket even while it is busy: every response still running
    /// or queued gets the limit error on its lane, then a 1001 close (an idle socket gets one
    /// error, as with `unsolicited_limit`).
    pub cut_at_lifetime: bool,
    /// Pause before answering each WebSocket upgrade (a real upstream's handshake takes ~200 ms).
    pub handshake_delay: Duration,
    /// Serve TLS (`wss://`, `https://`) with this certificate instead of plain TCP.
    pub tls: Option<MockTls>,
}

/// PEM files of the certificate chain and private key a TLS mock serves.
#[derive(Clone, Debug)]
pub struct MockTls {
    /// Certificate chain, leaf first.
    pub cert_pem: PathBuf,
    /// The leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: PathBuf,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            api_key: "sk-mock".to_owned(),
            record: None,
            serial: false,
            deterministic: false,
            deltas: 8,
            delta_bytes: 8,
            delta_interval: Duration::ZERO,
            lifetime: Duration::from_secs(60 * 60),
            upgrade_status: None,
            unsolicited_limit: false,
            cut_at_lifetime: false,
            handshake_delay: Duration::ZERO,
            tls: None,
        }
    }
}

/// Parses durations like `250ms`, `30s`, `60m`, `2h`, `500us`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 250ms, 30s, 60m"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(value)),
        "ms" => Ok(Duration::from_millis(value)),
        "us" => Ok(Duration::from_micros(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        "h" => Ok(Duration::from_secs(value * 3600)),
        other => Err(format!("invalid duration unit {other:?} in {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_of_the_pinned_command_line() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("60m"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
