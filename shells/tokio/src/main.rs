//! `wsv2-gateway`: serve, reload, demo, check-config — the shared command line on tokio.

use std::process::ExitCode;
use std::sync::Arc;

use wsv2_shell::cli::{self, Shell};
use wsv2_tokio::{TokioRuntime, demo, signals};

wsv2_shell::global_allocator!();

#[tokio::main]
async fn main() -> ExitCode {
    cli::run(Shell {
        name: "wsv2-gateway",
        version: wsv2_shell::version!(),
        rt: Arc::new(TokioRuntime),
        install_signals: signals::install,
        demo: Some(|| Box::pin(demo::run())),
    })
    .await
}
