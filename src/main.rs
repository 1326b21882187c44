use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Logs go to stderr; RUST_LOG overrides (e.g. RUST_LOG=smsbridge=debug shows
    // every AT exchange).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    smsbridge::cli::Cli::parse().run()
}
