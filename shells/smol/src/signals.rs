//! SIGTERM / SIGINT / SIGHUP through `async-signal` (driven by async-io's reactor).

use async_signal::{Signal, Signals};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use wsv2_shell::signals::{Request, SignalSource};

struct SmolSignals(Signals);

/// Installs the handlers (from then on these signals no longer kill the process)
pub fn install() -> std::io::Result<Box<dyn SignalSource>> {
    Ok(Box::new(SmolSignals(Signals::new([
        Signal::Term,
        Signal::Int,
        Signal::Hup,
    ])?)))
}

impl SignalSource for SmolSignals {
    fn next(&mut self) -> BoxFuture<'_, Request> {
        Box::pin(async move {
            loop {
                match self.0.next().await {
                    Some(Ok(Signal::Hup)) => return Request::Reload,
                    Some(Ok(_)) => return Request::Shutdown,
                    // An interrupted wait: wait again.
                    Some(Err(_)) => continue,
                    // The stream never ends while the handlers are installed.
                    None => std::future::pending::<()>().await,
                }
            }
        })
    }
}
