//! The command line: one `clap` tree, each subcommand a thin shell over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod pdu;

/// smsbridge: SMS for instant-messaging users, through a USB GSM/LTE modem.
#[derive(Debug, Parser)]
#[command(name = "smsbridge", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode and encode SMS PDUs as a modem in PDU mode prints and takes them.
    #[command(subcommand)]
    Pdu(pdu::PduCommand),
}

impl Cli {
    /// Runs the chosen subcommand. Exit status 2 means the input was invalid.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Pdu(cmd) => cmd.run(),
        }
    }
}

/// Prints one line on stderr and returns exit status 2, the status for bad input.
fn invalid_input(what: impl std::fmt::Display) -> ExitCode {
    eprintln!("smsbridge: {what}");
    ExitCode::from(2)
}
