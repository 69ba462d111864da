//! `hoist`: build, store, move and run container images, without a daemon.

mod cli;
mod cmd;
mod render;
mod transfer;

use std::process::ExitCode;

use clap::Parser;

/// A faster allocator: parsing, JSON and tar handling allocate many small objects.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The sandbox helper must stay single-threaded: dispatch before anything else runs.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == runtime_lite::HELPER_ARG)
    {
        runtime_lite::helper_main();
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == runtime_lite::userns::REMOVE_ARG)
    {
        runtime_lite::userns::remove_main();
    }
    let cli = cli::Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOIST_LOG")
        // rustls' platform verifier logs every refused certificate as an error of its own;
        // hoist reports the failure itself, with a hint.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("{level},rustls_platform_verifier=off"))
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            render::error(&e);
            ExitCode::from(1)
        }
    }
}
