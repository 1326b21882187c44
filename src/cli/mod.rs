//! The command line: one `clap` tree, each subcommand a thin shell over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod modem;
mod pdu;
mod sms;

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
    /// Talk to a modem: probe it.
    #[command(subcommand)]
    Modem(ModemCommand),
    /// Send and receive SMS through one modem, without the daemon.
    #[command(subcommand)]
    Sms(SmsCommand),
}

#[derive(Debug, Subcommand)]
enum ModemCommand {
    /// Start a modem up and print what it is: identity, SIM, registration, signal,
    /// SMSC, storage and the receive mode chosen.
    Probe(modem::ProbeArgs),
}

#[derive(Debug, Subcommand)]
enum SmsCommand {
    /// Send a text (several parts if long); prints the MR of each part.
    Send(sms::SendArgs),
    /// Print incoming SMS, reassembled, as they arrive.
    Listen(sms::ListenArgs),
}

impl Cli {
    /// Runs the chosen subcommand. Exit status 2 means the input was invalid.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Pdu(cmd) => cmd.run(),
            Command::Modem(ModemCommand::Probe(args)) => modem::probe(&args),
            Command::Sms(SmsCommand::Send(args)) => sms::send(&args),
            Command::Sms(SmsCommand::Listen(args)) => sms::listen(&args),
        }
    }
}

/// Prints one line on stderr and returns exit status 2, the status for bad input.
fn invalid_input(what: impl std::fmt::Display) -> ExitCode {
    eprintln!("smsbridge: {what}");
    ExitCode::from(2)
}

/// Prints one line on stderr and returns exit status 1: the command could not do
/// its job (the modem or the database said no).
fn failure(what: &str) -> ExitCode {
    eprintln!("smsbridge: {what}");
    ExitCode::FAILURE
}

/// A runtime for the commands that talk to modems or sockets.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
