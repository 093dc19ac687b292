//! `wsv2-mock-upstream`: the mock Responses API upstream as a process (flags: see the crate docs).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use wsv2_mock::{MockConfig, MockTls, parse_duration};

/// A faithful mock of OpenAI's Responses API upstream (WebSocket mode, SSE and JSON).
#[derive(Debug, Parser)]
#[command(name = "wsv2-mock-upstream", version)]
struct Args {
    /// Address to listen on; port 0 picks a free one (the printed line has the real one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The bearer token clients must send.
    #[arg(long, env = "MOCK_API_KEY")]
    api_key: String,
    /// Append one JSON line per handshake, frame, HTTP request, terminal/error event and close.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Run every response of a connection FIFO on one queue (launch-era OpenAI, xAI).
    #[arg(long)]
    serial: bool,
    /// Seeded ids, fixed created_at, no timestamps.
    #[arg(long)]
    deterministic: bool,
    /// Deltas per streamed item.
    #[arg(long, default_value_t = 8)]
    deltas: usize,
    /// Bytes of text per delta.
    #[arg(long, default_value_t = 8)]
    delta_bytes: usize,
    /// Pause before each delta, e.g. 5ms.
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    delta_interval: Duration,
    /// Connection lifetime, e.g. 60m.
    #[arg(long, value_parser = parse_duration, default_value = "60m")]
    lifetime: Duration,
    /// Answer every WebSocket upgrade with this HTTP status (426, 429, 500, …).
    #[arg(long)]
    upgrade_status: Option<u16>,
    /// At lifetime expiry, send the limit error unsolicited on an idle socket and close it.
    #[arg(long)]
    unsolicited_limit: bool,
    /// At lifetime expiry, cut busy sockets too: each running or queued response gets the limit
    /// error on its lane, then a 1001 close.
    #[arg(long)]
    cut_at_lifetime: bool,
    /// Pause before answering each WebSocket upgrade, e.g. 200ms (a real upstream's handshake).
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    handshake_delay: Duration,
    /// Serve TLS with this PEM certificate chain (needs --tls-key): wss:// and https://.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve the admin endpoint (runtime faults, state) on this address; prints a second line,
    /// `admin on http://ADDR`.
    #[arg(long)]
    admin: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cfg = MockConfig {
        api_key: args.api_key,
        record: args.record,
        serial: args.serial,
        deterministic: args.deterministic,
        deltas: args.deltas,
        delta_bytes: args.delta_bytes,
        delta_interval: args.delta_interval,
        lifetime: args.lifetime,
        upgrade_status: args.upgrade_status,
        unsolicited_limit: args.unsolicited_limit,
        cut_at_lifetime: args.cut_at_lifetime,
        handshake_delay: args.handshake_delay,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert_pem, key_pem)| MockTls { cert_pem, key_pem }),
    };
    let handle = wsv2_mock::start_on(args.listen, cfg).await?;
    let admin = match args.admin {
        Some(addr) => Some(handle.serve_admin(addr).await?),
        None => None,
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", handle.ws_url())?;
    if let Some(admin) = admin {
        writeln!(stdout, "admin on http://{admin}")?;
    }
    stdout.flush()?;
    drop(stdout);
    shutdown_signal().await;
    handle.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
