//! The gateway binary's command line, shared by every shell: `serve`, `reload`, `check-config`
//! and `demo`, with the same flags and exit codes whatever the runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use futures_util::future::BoxFuture;
use wsv2_core::file_config::{ConfigVerdict, EXIT_INVALID_CONFIG, GatewayConfig};

use crate::logging::{self, LogFormat};
use crate::runtime::Rt;
use crate::signals::{self, Request, SignalSource};

/// The `demo` subcommand of a shell: runs and returns its printable report
pub type Demo = fn() -> BoxFuture<'static, Result<String, String>>;

/// What a shell plugs into the command line
pub struct Shell {
    /// The binary's name, for `--help`
    pub name: &'static str,
    /// What `--version` prints after the name ([`version!`](crate::version))
    pub version: &'static str,
    /// Where every task runs
    pub rt: Rt,
    /// Installs the SIGTERM / SIGINT / SIGHUP handlers
    pub install_signals: fn() -> std::io::Result<Box<dyn SignalSource>>,
    /// `demo`: a mock upstream and the gateway in-process, two chained turns; `None` when the
    /// shell has no embedded mock
    pub demo: Option<Demo>,
}

/// The `--version` text of the calling binary: its release and the commit it was built from,
/// `0.1.0 (commit 0123abcd…)`. Expanded in the binary's crate, whose build script
/// (`shells/build_commit.rs`) sets `WSV2_BUILD_COMMIT`.
#[macro_export]
macro_rules! version {
    () => {
        concat!(
            env!("CARGO_PKG_VERSION"),
            " (commit ",
            env!("WSV2_BUILD_COMMIT"),
            ")"
        )
    };
}

#[derive(Parser)]
#[command(about = "OpenAI Responses API WebSocket gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with a configuration file (WSV2_* environment variables and flags override it)
    Serve {
        /// The TOML configuration
        #[arg(long, env = "WSV2_CONFIG")]
        config: PathBuf,
        /// Listen address (overrides `listen`)
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Log lines as `text` or `json` (one object per line)
        #[arg(long, env = "WSV2_LOG_FORMAT", default_value = "text")]
        log_format: LogFormat,
        /// Write the process id here (for `reload`)
        #[arg(long, env = "WSV2_PID_FILE")]
        pid_file: Option<PathBuf>,
    },
    /// Ask a running gateway to re-read its configuration (sends SIGHUP to the pid in the pid
    /// file): accounts and client keys change, open sessions continue
    Reload {
        /// The pid file the gateway was started with (`serve --pid-file`)
        #[arg(long, env = "WSV2_PID_FILE")]
        pid_file: PathBuf,
    },
    /// Start a mock upstream and the gateway in-process and drive two chained turns
    Demo,
    /// Report every unknown key and bad value of a configuration file
    CheckConfig {
        /// The TOML configuration
        file: PathBuf,
    },
}

/// Runs the command line of `shell` to its exit code
pub async fn run(shell: Shell) -> ExitCode {
    let matches = Cli::command()
        .name(shell.name)
        .version(shell.version)
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Serve {
            config,
            listen,
            log_format,
            pid_file,
        } => {
            logging::init(log_format);
            serve(&shell, config, listen, pid_file).await
        }
        Command::Reload { pid_file } => {
            report(signals::send_reload(&pid_file).map(|pid| format!("sent SIGHUP to {pid}\n")))
        }
        Command::Demo => {
            let Some(demo) = shell.demo else {
                eprintln!(
                    "{} has no embedded mock upstream; run `wsv2-gateway demo`",
                    shell.name
                );
                return ExitCode::from(2);
            };
            if std::env::var_os("RUST_LOG").is_some() {
                logging::init(LogFormat::Text);
            }
            report(demo().await.map_err(|e| format!("demo failed: {e}")))
        }
        Command::CheckConfig { file } => {
            // The very verdict `serve` acts on: same overrides, same words, same exit code.
            let verdict = match read_config(&file) {
                Ok(verdict) => verdict,
                Err(code) => return code,
            };
            print!("{}", verdict.report());
            ExitCode::from(verdict.exit_code())
        }
    }
}

/// Prints a command's text: to stdout and success, or to stderr (one line) and failure
fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The process environment as `(name, value)` pairs; a variable whose name or value is not
/// UTF-8 is left out (it can be neither an override nor a credential the file names)
fn environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// Reads the configuration file and judges it with the process environment; an unreadable file
/// is reported here and ends the command with [`EXIT_INVALID_CONFIG`]
fn read_config(path: &PathBuf) -> Result<ConfigVerdict, ExitCode> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(GatewayConfig::check(&text, environment())),
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            Err(ExitCode::from(EXIT_INVALID_CONFIG))
        }
    }
}

/// Reads and validates the configuration file for `serve` (and reloads): warnings go to stderr
/// and the configuration is used; an invalid one prints the report `check-config` prints and
/// gives the exit code it gives
fn load_config(path: &PathBuf, listen: Option<SocketAddr>) -> Result<GatewayConfig, ExitCode> {
    let verdict = read_config(path)?;
    let code = verdict.exit_code();
    match verdict.outcome {
        Ok(mut config) => {
            for warning in &verdict.warnings {
                eprintln!("warning: {warning} (ignored)");
                tracing::warn!(variable = %warning.path, problem = %warning.message, "environment variable ignored");
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            Ok(config)
        }
        Err(_) => {
            eprint!("{}", verdict.report());
            Err(ExitCode::from(code))
        }
    }
}

/// Serves until SIGTERM / SIGINT, reloading on SIGHUP; then shuts down gracefully (a second
/// SIGTERM / SIGINT during shutdown exits at once with 130)
async fn serve(
    shell: &Shell,
    config: PathBuf,
    listen: Option<SocketAddr>,
    pid_file: Option<PathBuf>,
) -> ExitCode {
    let gateway_config = match load_config(&config, listen) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut signals = match (shell.install_signals)() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match crate::start(shell.rt.clone(), gateway_config).await {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &pid_file
        && let Err(e) = signals::write_pid_file(path)
    {
        eprintln!("cannot write pid file {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    // The admin line first: scripts that read up to `listening on` and then stop reading a
    // pipe must not leave a later line of ours without a reader.
    if let Some(admin) = handle.admin_addr {
        println!("admin listening on http://{admin}");
    }
    println!("listening on {}", handle.ws_url());
    loop {
        match signals.next().await {
            Request::Shutdown => break,
            Request::Reload => match load_config(&config, listen) {
                Ok(new_config) => {
                    if let Err(e) = handle.reload(new_config).await {
                        tracing::error!(error = %e, "reload refused; the running configuration stays");
                    }
                }
                Err(_) => tracing::error!(
                    file = %config.display(),
                    "reload: the configuration file is invalid; the running configuration stays"
                ),
            },
        }
    }
    let second_shutdown = async { while signals.next().await != Request::Shutdown {} };
    let code = tokio::select! {
        _ = handle.shutdown() => ExitCode::SUCCESS,
        () = second_shutdown => {
            eprintln!("second signal during shutdown: exiting now");
            ExitCode::from(130)
        }
    };
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    code
}
