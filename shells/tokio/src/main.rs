//! `wsv2-gateway`: serve, demo, check-config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wsv2_core::file_config::{GatewayConfig, check_config_report, format_report};

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
    },
    /// Start a mock upstream and the gateway in-process and drive two chained turns
    Demo,
    /// Report every unknown key and bad value of a configuration file
    CheckConfig {
        /// The TOML configuration
        file: PathBuf,
    },
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => {
            init_logging();
            let text = match std::fs::read_to_string(&config) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("cannot read {}: {e}", config.display());
                    return ExitCode::from(2);
                }
            };
            let loaded = GatewayConfig::load(&text, std::env::vars());
            let mut gateway_config = match loaded {
                Ok(c) => c,
                Err(_) => {
                    eprint!("{}", format_report(&loaded));
                    return ExitCode::from(2);
                }
            };
            if let Some(listen) = listen {
                gateway_config.listen = listen;
            }
            let handle = match wsv2_tokio::start(gateway_config).await {
                Ok(handle) => handle,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("listening on {}", handle.ws_url());
            let _ = tokio::signal::ctrl_c().await;
            handle.shutdown();
            ExitCode::SUCCESS
        }
        Command::Demo => {
            if std::env::var_os("RUST_LOG").is_some() {
                init_logging();
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
