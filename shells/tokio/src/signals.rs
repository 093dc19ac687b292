//! Process signals and the pid file: SIGTERM / SIGINT shut down gracefully (a second one exits
//! at once), SIGHUP reloads the configuration file, and `wsv2-gateway reload` sends SIGHUP to
//! the pid written by `serve --pid-file`.

use std::path::Path;

use tokio::signal::unix::{SignalKind, signal};

/// What the serving loop is asked to do next
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT: shut down gracefully
    Shutdown,
    /// SIGHUP: re-read the configuration
    Reload,
}

/// The signals a serving gateway listens to
#[derive(Debug)]
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (from now on these signals no longer kill the process)
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next request
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Shutdown,
            _ = self.int.recv() => Request::Shutdown,
            _ = self.hup.recv() => Request::Reload,
        }
    }

    /// The next SIGTERM or SIGINT (during shutdown: exit at once)
    pub async fn next_shutdown(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Writes this process's pid to `path`
pub fn write_pid_file(path: &Path) -> std::io::Result<()> {
    std::fs::write(path, format!("{}\n", std::process::id()))
}

/// Sends SIGHUP to the pid in `path` (what `wsv2-gateway reload` does)
pub fn send_reload(path: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read pid file {}: {e}", path.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("pid file {} holds no pid", path.display()))?;
    let target = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| format!("pid file {} holds pid {pid}", path.display()))?;
    rustix::process::kill_process(target, rustix::process::Signal::HUP)
        .map_err(|e| format!("cannot signal pid {pid}: {e}"))?;
    Ok(pid as u32)
}
