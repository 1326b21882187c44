//! The command line: one `clap` tree, each subcommand a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::store::{Store, StoreError};

mod contacts;
mod inbox;
mod modem;
mod output;
mod pdu;
mod purge;
mod queue;
mod run;
mod sim;
mod sms;
mod stress;
mod users;

/// smsbridge: SMS for instant-messaging users, through a USB GSM/LTE modem.
#[derive(Debug, Parser)]
#[command(name = "smsbridge", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Without one, every setting has its default.
    #[arg(long, global = true, env = "SMSBRIDGE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The SQLite database [default: database.path of the configuration, else ./smsbridge.db]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge daemon: modems, store, SIP front end. Without any
    /// configuration: the demo on a simulated modem, SIP on 127.0.0.1:5060.
    Run,
    /// Show the running daemon's modems, queues and recent failures.
    Status(run::StatusArgs),
    /// Check the configuration file.
    #[command(subcommand)]
    Config(run::ConfigCommand),
    /// Decode and encode SMS PDUs as a modem in PDU mode prints and takes them.
    #[command(subcommand)]
    Pdu(pdu::PduCommand),
    /// Modems: probe one, or run the simulated modem (`sim`) and talk to it.
    #[command(subcommand)]
    Modem(ModemCommand),
    /// Send and receive SMS through one modem, without the daemon.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// IM accounts (SIP address of record or IMPS UserID) that may use the bridge.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Contacts: which subscriber (SMS-only person) is in which user's list.
    #[command(subcommand)]
    Contacts(contacts::ContactsCommand),
    /// The outbox: messages waiting for, or sent through, a modem.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Received messages: SMS from subscribers, IMs relayed between users.
    #[command(subcommand)]
    Inbox(inbox::InboxCommand),
    /// Charging records: every SMS part submitted, every message delivered to
    /// a user, with its final outcome.
    #[command(subcommand)]
    Cdr(queue::CdrCommand),
    /// Delete what is over and old: final messages, raw PDUs, charging records.
    Purge(purge::PurgeArgs),
    /// Testing only: load generators for the store (used by the crash test).
    #[command(subcommand, hide = true)]
    StoreStress(stress::StressCommand),
}

#[derive(Debug, Subcommand)]
enum ModemCommand {
    /// Start a modem up and print what it is: identity, SIM, registration, signal,
    /// SMSC, storage and the receive mode chosen.
    Probe(modem::ProbeArgs),
    /// Run a simulated modem on a PTY (--link) or TCP port (--listen) until SIGINT/SIGTERM.
    Sim(Box<sim::SimArgs>),
    /// Inject a mobile-originated SMS into a running simulated modem.
    SimInject(sim::InjectArgs),
    /// Turn on a fault in a running simulated modem.
    SimFault(sim::FaultArgs),
    /// Print the SMS a running simulated modem accepted, one JSON object a line.
    SimSent(sim::SentArgs),
}

#[derive(Debug, Subcommand)]
enum SmsCommand {
    /// Send a text (several parts if long); prints the MR of each part.
    Send(sms::SendArgs),
    /// Print incoming SMS, reassembled, as they arrive.
    Listen(sms::ListenArgs),
}

impl Cli {
    /// The log filter when `RUST_LOG` is not set: long-running commands log at
    /// info, one-shot commands not at all (they report on stdout/stderr).
    pub fn default_log_filter(&self) -> &'static str {
        match &self.command {
            Command::Modem(ModemCommand::Sim(_)) | Command::Run => "info,rsipstack=warn",
            _ => "off",
        }
    }

    /// Runs the chosen subcommand. Exit status 2 means the input was invalid, 1
    /// another failure (e.g. the database is unavailable).
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Run => return run::run(self.config.as_ref(), self.db),
            Command::Status(args) => return run::status(self.config.as_ref(), &args),
            Command::Config(run::ConfigCommand::Check) => {
                return run::config_check(self.config.as_ref());
            }
            Command::Pdu(cmd) => return cmd.run(),
            Command::Modem(ModemCommand::Probe(args)) => return modem::probe(&args),
            Command::Modem(ModemCommand::Sim(args)) => return args.run(),
            Command::Modem(ModemCommand::SimInject(args)) => return args.run(),
            Command::Modem(ModemCommand::SimFault(args)) => return args.run(),
            Command::Modem(ModemCommand::SimSent(args)) => return args.run(),
            Command::Sms(SmsCommand::Send(args)) => return sms::send(&args, self.config.as_ref()),
            Command::Sms(SmsCommand::Listen(args)) => return sms::listen(&args),
            _ => {}
        }
        let ctx = match Ctx::new(self.config, self.db) {
            Ok(c) => c,
            Err(f) => return f.report(),
        };
        let result = match self.command {
            Command::Run
            | Command::Status(_)
            | Command::Config(_)
            | Command::Pdu(_)
            | Command::Modem(_)
            | Command::Sms(_) => Ok(()),
            Command::Users(cmd) => cmd.run(&ctx),
            Command::Contacts(cmd) => cmd.run(&ctx),
            Command::Queue(cmd) => cmd.run(&ctx),
            Command::Inbox(cmd) => cmd.run(&ctx),
            Command::Cdr(cmd) => cmd.run(&ctx),
            Command::Purge(args) => args.run(&ctx),
            Command::StoreStress(cmd) => cmd.run(&ctx),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => f.report(),
        }
    }
}

/// What the store commands share: the configuration and the database path.
struct Ctx {
    config: Config,
    db: PathBuf,
}

impl Ctx {
    fn new(config: Option<PathBuf>, db: Option<PathBuf>) -> Result<Self, Failure> {
        let config = match config {
            Some(path) => Config::load(&path).map_err(|e| Failure::BadInput(e.to_string()))?,
            None => Config::default(),
        };
        let db = db.unwrap_or_else(|| config.database.path.clone());
        Ok(Self { config, db })
    }

    /// The database for a command that writes: created if missing.
    fn open(&self) -> Result<Store, Failure> {
        let mut store = Store::open(&self.db)?;
        store.set_default_country_code(self.config.numbers.default_country_code.clone());
        Ok(store)
    }

    /// The database for a command that changes rows it does not create (a
    /// user to remove, a message to requeue): never created.
    fn change(&self) -> Result<Store, Failure> {
        let mut store = Store::open_existing_for_writing(&self.db)?;
        store.set_default_country_code(self.config.numbers.default_country_code.clone());
        Ok(store)
    }

    /// The database for a command that only reads: never created (a missing
    /// file is "no database at PATH", exit 1), and read even where it cannot
    /// be written.
    fn read(&self) -> Result<Store, Failure> {
        let mut store = Store::open_existing(&self.db)?;
        store.set_default_country_code(self.config.numbers.default_country_code.clone());
        Ok(store)
    }

    fn country_code(&self) -> Option<&str> {
        self.config.numbers.default_country_code.as_deref()
    }
}

/// Why a command failed, which decides its exit status.
#[derive(Debug)]
enum Failure {
    /// Exit 2, one line: the input was wrong.
    BadInput(String),
    /// Exit 2 after the lines were printed (e.g. bad CSV rows).
    BadInputReported,
    /// Exit 2 or 1, depending on the store's verdict.
    Store(StoreError),
    /// Exit 1.
    Other(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Failure {
    fn report(self) -> ExitCode {
        match self {
            Self::BadInput(m) => invalid_input(m),
            Self::BadInputReported => ExitCode::from(2),
            Self::Store(e) if e.is_bad_input() => invalid_input(e),
            Self::Store(e) => {
                eprintln!("smsbridge: {e}");
                ExitCode::FAILURE
            }
            Self::Other(m) => {
                eprintln!("smsbridge: {m}");
                ExitCode::FAILURE
            }
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
