//! What the workloads read from the processes under test: the gateway's `/metrics` (pool and
//! session gauges), the mock's admin endpoint, and `/proc/PID` (RSS, open fds, threads).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Failure;

/// How long one probe request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One plain HTTP/1.1 request to `addr` (`HOST:PORT`); returns status and body.
pub async fn http(addr: &str, method: &str, path: &str) -> Result<(u16, String), Failure> {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| Failure::new(format!("connect {addr}: {e}")))?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| Failure::new(format!("write {addr}: {e}")))?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer)
            .await
            .map_err(|e| Failure::new(format!("read {addr}: {e}")))?;
        Ok::<_, Failure>(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .map_err(|_| Failure::new(format!("{method} {addr}{path}: no answer in time")))??;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::new(format!("{method} {addr}{path}: no status line")))?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The mock's admin endpoint at `addr` (`HOST:PORT`).
#[derive(Debug, Clone)]
pub struct MockAdmin(pub String);

impl MockAdmin {
    /// `GET /state`.
    pub async fn state(&self) -> Result<Value, Failure> {
        self.call("GET", "/state").await
    }

    /// A `POST` route (`/fault?name=…`, `/upgrade?status=…`, `/clear`, `/reset-max`).
    pub async fn post(&self, path: &str) -> Result<Value, Failure> {
        self.call("POST", path).await
    }

    async fn call(&self, method: &str, path: &str) -> Result<Value, Failure> {
        let (status, body) = http(&self.0, method, path).await?;
        if status != 200 {
            return Err(Failure::new(format!(
                "mock admin {method} {path}: {status} {body}"
            )));
        }
        serde_json::from_str(&body).map_err(|e| Failure::new(format!("mock admin JSON: {e}")))
    }
}

/// The gateway gauges that must return to zero when the load stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PoolGauges {
    /// Upstream conns open (all accounts).
    pub open: i64,
    /// Idle conns.
    pub idle: i64,
    /// Conns leased to a session or turn.
    pub leased: i64,
    /// Conns being dialed.
    pub creating: i64,
    /// Conns held for `store:false` HTTP chains (held slots).
    pub held: i64,
    /// Holders waiting for a conn.
    pub waiters: i64,
    /// Client WebSocket sessions open.
    pub sessions_open: i64,
}

impl PoolGauges {
    /// Whether nothing is leased, dialing, held, waiting or open on the client side.
    pub fn settled(&self) -> bool {
        self.leased == 0
            && self.creating == 0
            && self.held == 0
            && self.waiters == 0
            && self.sessions_open == 0
    }
}

/// Reads the gauges from the gateway's `/metrics` at `addr` (`HOST:PORT`).
pub async fn pool_gauges(addr: &str) -> Result<PoolGauges, Failure> {
    Ok(parse_gauges(&metrics(addr).await?))
}

/// The gateway's `/metrics` text at `addr` (`HOST:PORT`).
pub async fn metrics(addr: &str) -> Result<String, Failure> {
    let (status, text) = http(addr, "GET", "/metrics").await?;
    if status != 200 {
        return Err(Failure::new(format!("GET /metrics: {status}")));
    }
    Ok(text)
}

/// The value of the unlabelled series `name` in a `/metrics` text, if present.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Parses the gauges that must return to zero from a `/metrics` text.
pub fn parse_gauges(text: &str) -> PoolGauges {
    let mut g = PoolGauges::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value = value.parse::<f64>().unwrap_or(0.0) as i64;
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let state = labels
            .split(',')
            .find_map(|l| l.trim_end_matches('}').strip_prefix("state=\""))
            .map(|s| s.trim_end_matches('"'));
        match (name, state) {
            ("wsv2_pool_conns", Some("open")) => g.open += value,
            ("wsv2_pool_conns", Some("idle")) => g.idle += value,
            ("wsv2_pool_conns", Some("leased")) => g.leased += value,
            ("wsv2_pool_conns", Some("creating")) => g.creating += value,
            ("wsv2_pool_conns", Some("held")) => g.held += value,
            ("wsv2_pool_waiters", _) => g.waiters += value,
            ("wsv2_sessions_open", _) => g.sessions_open += value,
            _ => {}
        }
    }
    g
}

/// After the load: polls the gauges until they settle or `limit` passes; returns the last
/// reading and how long it took (`None` when they never settled).
pub async fn settle(addr: &str, limit: Duration) -> (Option<PoolGauges>, Option<Duration>) {
    let started = Instant::now();
    let mut last = None;
    loop {
        if let Ok(g) = pool_gauges(addr).await {
            last = Some(g);
            if g.settled() {
                return (last, Some(started.elapsed()));
            }
        }
        if started.elapsed() >= limit {
            return (last, None);
        }
        // Polling a gauge of another process: there is nothing to wait on.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One reading of `/proc/PID`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcReading {
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Of which anonymous memory (heap, stacks), KiB.
    pub rss_anon_kib: u64,
    /// Of which file-backed pages (the executable and libraries as far as they have run), KiB.
    pub rss_file_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads `/proc/PID/status` and counts `/proc/PID/fd`; `None` when the process is gone.
pub fn proc_reading(pid: u32) -> Option<ProcReading> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcReading {
        rss_kib: field("VmRSS:"),
        rss_anon_kib: field("RssAnon:"),
        rss_file_kib: field("RssFile:"),
        fds,
        threads: field("Threads:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_sum_over_accounts_and_ignore_other_series() {
        let text = "# HELP x\nwsv2_pool_conns{account=\"a\",state=\"open\"} 3\n\
            wsv2_pool_conns{account=\"b\",state=\"open\"} 2\n\
            wsv2_pool_conns{account=\"a\",state=\"leased\"} 1\n\
            wsv2_pool_conns{account=\"a\",state=\"creating\"} 4\n\
            wsv2_pool_waiters{account=\"a\"} 5\nwsv2_sessions_open 7\nwsv2_other 9\n";
        let g = parse_gauges(text);
        assert_eq!((g.open, g.leased, g.creating, g.waiters), (5, 1, 4, 5));
        assert_eq!(g.sessions_open, 7);
        assert!(!g.settled());
        assert!(PoolGauges::default().settled());
        assert_eq!(metric_value(text, "wsv2_sessions_open"), Some(7.0));
        assert_eq!(metric_value(text, "wsv2_pool_conns"), None);
        assert_eq!(metric_value(text, "wsv2_other_absent"), None);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(unchunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }

    #[test]
    fn this_process_has_a_reading() {
        let me = proc_reading(std::process::id()).expect("own /proc entry");
        assert!(me.rss_kib > 0 && me.fds > 0 && me.threads > 0);
        assert!(me.rss_anon_kib > 0 && me.rss_file_kib > 0);
        assert!(me.rss_anon_kib + me.rss_file_kib <= me.rss_kib);
    }
}
