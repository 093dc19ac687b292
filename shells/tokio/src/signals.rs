//! SIGTERM / SIGINT / SIGHUP through `tokio::signal`.

use futures_util::future::BoxFuture;
use tokio::signal::unix::{Signal, SignalKind, signal};
use wsv2_shell::signals::{Request, SignalSource};

/// The handlers, installed (from then on these signals no longer kill the process)
struct TokioSignals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

/// Installs the handlers
pub fn install() -> std::io::Result<Box<dyn SignalSource>> {
    Ok(Box::new(TokioSignals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        hup: signal(SignalKind::hangup())?,
    }))
}

impl SignalSource for TokioSignals {
    fn next(&mut self) -> BoxFuture<'_, Request> {
        Box::pin(async move {
            tokio::select! {
                _ = self.term.recv() => Request::Shutdown,
                _ = self.int.recv() => Request::Shutdown,
                _ = self.hup.recv() => Request::Reload,
            }
        })
    }
}
