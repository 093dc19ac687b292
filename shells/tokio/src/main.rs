//! `wsv2-gateway`: serve, reload, demo, check-config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wsv2_core::file_config::{GatewayConfig, check_config_report, format_report};
use wsv2_tokio::logging::{self, LogFormat};
use wsv2_tokio::signals::{self, Request, Signals};

#[derive(Parser)]
#[command(
    name = "wsv2-gateway",
    version,
    about = "OpenAI Responses API WebSocket gateway"
)]
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
        /// Write the process id here (for `wsv2-gateway reload`)
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

/// Serves until SIGTERM / SIGINT, reloading on SIGHUP; then shuts down gracefully
async fn serve(config: PathBuf, listen: Option<SocketAddr>, pid_file: Option<PathBuf>) -> ExitCode {
    let Some(gateway_config) = load_config(&config, listen) else {
        return ExitCode::from(2);
    };
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match wsv2_tokio::start(gateway_config).await {
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
    let code = tokio::select! {
        _ = handle.shutdown() => ExitCode::SUCCESS,
        () = signals.next_shutdown() => {
            eprintln!("second signal during shutdown: exiting now");
            ExitCode::from(130)
        }
    };
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    code
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            log_format,
            pid_file,
        } => {
            logging::init(log_format);
            serve(config, listen, pid_file).await
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
            if std::env::var_os("RUST_LOG").is_some() {
                logging::init(LogFormat::Text);
            }
            match wsv2_tokio::demo::run().await {
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
