//! `wsv2-gateway-smol`: the shared command line (serve, reload, check-config) on smol.

use std::process::ExitCode;
use std::sync::Arc;

use wsv2_shell::cli::{self, Shell};
use wsv2_smol::{SmolRuntime, signals};

wsv2_shell::global_allocator!();

fn main() -> ExitCode {
    let rt = SmolRuntime::global();
    smol::block_on(cli::run(Shell {
        name: "wsv2-gateway-smol",
        version: wsv2_shell::version!(),
        rt: Arc::new(rt),
        install_signals: signals::install,
        // The demo's embedded mock upstream runs on tokio: `wsv2-gateway demo` has it.
        demo: None,
    }))
}
