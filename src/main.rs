use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// jemalloc, not glibc's malloc: under a SIP flood glibc's per-thread arenas
/// keep and fragment freed request memory (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start: two arenas rather than four per
/// core, and freed pages given back to the system after half a second
/// instead of ten (`muzzy` pages at once). Under a SIP flood the memory of
/// answered requests otherwise stays resident for those ten seconds in each
/// of eight arenas: 67–73 MB at 10,000 MESSAGE/s, 50–52 MB with these
/// (docs/performance.md). `_RJEM_MALLOC_CONF` in the environment still
/// overrides them.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 46] = b"narenas:2,dirty_decay_ms:500,muzzy_decay_ms:0\0";

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
