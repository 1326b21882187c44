//! The crash soak of issue 12 for long runs (the CI-sized one is
//! `tests/crash_soak.rs`; both run `tests/soak_support`):
//!
//! ```text
//! cargo build --release
//! cargo run --release --example crash_soak -- --messages 1000 --kills 12 --seed 7
//! cargo run --release --example crash_soak -- --messages 1000 --faults 30 --seed 7
//! ```
//!
//! It prints the seed first and a table of figures at the end, and exits 1 if
//! an accepted message was lost, sent twice, or left in a state that is not
//! final.

#[path = "../tests/soak_support/mod.rs"]
mod soak_support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use soak_support::{SoakConfig, Trouble};

/// SIGKILL the daemon (or fault its simulated modems) while SIP MESSAGEs flow,
/// then check that every accepted message reached a final state.
#[derive(Parser)]
struct Args {
    /// Messages to send.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// SIGKILLs of the daemon at random moments.
    #[arg(long, default_value_t = 12, conflicts_with = "faults")]
    kills: usize,
    /// Simulator faults at random moments instead of kills.
    #[arg(long)]
    faults: Option<usize>,
    /// Seed of the moments and choices (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// MESSAGEs per second.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// `[bridge] report_window` for the daemon.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    report_window: Duration,
    /// The smsbridge binary (default: target/<profile>/smsbridge next to this example).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Keep configuration, database, logs and transcripts here (default: a
    /// temporary directory, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let bin = args.bin.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.parent()?.join("smsbridge")))
            .unwrap_or_else(|| PathBuf::from("smsbridge"))
    });
    if !bin.exists() {
        eprintln!(
            "{} not found: build it first (cargo build --release) or pass --bin",
            bin.display()
        );
        return ExitCode::from(2);
    }
    let tmp = match &args.dir {
        Some(_) => None,
        None => match tempfile::tempdir() {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("no temporary directory: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let dir = args
        .dir
        .clone()
        .or_else(|| tmp.as_ref().map(|t| t.path().to_owned()))
        .unwrap_or_default();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let (trouble, events) = match args.faults {
        Some(n) => (Trouble::Faults, n),
        None => (Trouble::Kills, args.kills),
    };
    println!(
        "crash soak: seed {seed}, {} messages, {events} {trouble:?}",
        args.messages
    );
    let mut cfg = SoakConfig::new(bin, dir, trouble);
    cfg.messages = args.messages;
    cfg.events = events;
    cfg.seed = seed;
    cfg.rate = args.rate;
    cfg.report_window = args.report_window;
    cfg.verbose = true;
    match soak_support::run(&cfg) {
        Ok(f) => {
            println!("{}", f.table());
            let problems = f.problems();
            for p in &problems {
                println!("PROBLEM: {p}");
            }
            if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("the soak did not run: {e}");
            ExitCode::from(2)
        }
    }
}
