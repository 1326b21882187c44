//! The command line: one `clap` tree, each subcommand a thin shell over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod pdu;
mod sim;

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
    /// Modems: the simulated modem (`sim`) and talking to a running one.
    #[command(subcommand)]
    Modem(ModemCommand),
}

#[derive(Debug, Subcommand)]
enum ModemCommand {
    /// Run a simulated modem on a PTY (--link) or TCP port (--listen) until SIGINT/SIGTERM.
    Sim(Box<sim::SimArgs>),
    /// Inject a mobile-originated SMS into a running simulated modem.
    SimInject(sim::InjectArgs),
    /// Turn on a fault in a running simulated modem.
    SimFault(sim::FaultArgs),
    /// Print the SMS a running simulated modem accepted, one JSON object a line.
    SimSent(sim::SentArgs),
}

impl Cli {
    /// Runs the chosen subcommand. Exit status 2 means the input was invalid.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Pdu(cmd) => cmd.run(),
            Command::Modem(ModemCommand::Sim(args)) => args.run(),
            Command::Modem(ModemCommand::SimInject(args)) => args.run(),
            Command::Modem(ModemCommand::SimFault(args)) => args.run(),
            Command::Modem(ModemCommand::SimSent(args)) => args.run(),
        }
    }
}

/// Prints one line on stderr and returns exit status 2, the status for bad input.
fn invalid_input(what: impl std::fmt::Display) -> ExitCode {
    eprintln!("smsbridge: {what}");
    ExitCode::from(2)
}
