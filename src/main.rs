use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    smsbridge::cli::Cli::parse().run()
}
