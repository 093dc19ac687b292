//! Process signals and the pid file: SIGTERM / SIGINT shut down gracefully (a second one exits
//! at once), SIGHUP reloads the configuration file, and `wsv2-gateway reload` sends SIGHUP to
//! the pid written by `serve --pid-file`.

use std::path::Path;

use futures_util::future::BoxFuture;

/// What the serving loop is asked to do next
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT: shut down gracefully
    Shutdown,
    /// SIGHUP: re-read the configuration
    Reload,
}

/// The signals a serving gateway listens to, as the shell's runtime delivers them
pub trait SignalSource: Send {
    /// The next request (SIGTERM / SIGINT: shutdown, SIGHUP: reload)
    fn next(&mut self) -> BoxFuture<'_, Request>;
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
