use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// jemalloc, not glibc's malloc: under a SIP flood glibc's per-thread arenas
/// keep and fragment freed request memory (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = smsbridge::cli::Cli::parse();
    // Logs go to stderr; RUST_LOG overrides (RUST_LOG=smsbridge=debug shows every
    // AT exchange). One-shot commands print their own results and errors, so by
    // default they log nothing; the daemon and the simulator log at info.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.default_log_filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    cli.run()
}
