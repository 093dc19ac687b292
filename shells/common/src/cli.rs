//! The gateway binary's command line, shared by every shell: `serve`, `reload`, `check-config`
//! and `demo`, with the same flags and exit codes whatever the runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use futures_util::future::BoxFuture;
use wsv2_core::file_config::{GatewayConfig, check_config_report, format_report};

use crate::logging::{self, LogFormat};
use crate::runtime::Rt;
use crate::signals::{self, Request, SignalSource};

/// The `demo` subcommand of a shell: runs and returns its printable report
pub type Demo = fn() -> BoxFuture<'static, Result<String, String>>;

/// What a shell plugs into the command line
pub struct Shell {
    /// The binary's name, for `--help`
    pub name: &'static str,
    /// Where every task runs
    pub rt: Rt,
    /// Installs the SIGTERM / SIGINT / SIGHUP handlers
    pub install_signals: fn() -> std::io::Result<Box<dyn SignalSource>>,
    /// `demo`: a mock upstream and the gateway in-process, two chained turns; `None` when the
    /// shell has no embedded mock
    pub demo: Option<Demo>,
}

#[derive(Parser)]
#[command(version, about = "OpenAI Responses API WebSocket gateway")]
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
    let matches = Cli::command().name(shell.name).get_matches();
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
        Command::Reload { pid_file } => match signals::send_reload(&pid_file) {
            Ok(pid) => {
                println!("sent SIGHUP to {pid}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
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
            match demo().await {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("demo failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { file } => {
            let text = match std::fs::read_to_string(&file) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("cannot read {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            let env = |name: &str| std::env::var(name).ok();
            print!("{}", check_config_report(&text, &env));
            match GatewayConfig::load(&text, std::env::vars()) {
                Ok(_) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(1),
            }
        }
    }
}

/// Reads and validates the configuration file; `None` after printing why not
fn load_config(path: &PathBuf, listen: Option<SocketAddr>) -> Option<GatewayConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            return None;
        }
    };
    let loaded = GatewayConfig::load(&text, std::env::vars());
    match loaded {
        Ok(mut config) => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            Some(config)
        }
        Err(_) => {
            eprint!("{}", format_report(&loaded));
            None
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
    let Some(gateway_config) = load_config(&config, listen) else {
        return ExitCode::from(2);
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
    println!("listening on {}", handle.ws_url());
    loop {
        match signals.next().await {
            Request::Shutdown => break,
            Request::Reload => match load_config(&config, listen) {
                Some(new_config) => {
                    if let Err(e) = handle.reload(new_config).await {
                        tracing::error!(error = %e, "reload refused; the running configuration stays");
                    }
                }
                None => tracing::error!(
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
