//! The simulated modem: a sans-IO AT command interpreter that behaves like a real
//! USB GSM/LTE modem in PDU mode (quirks of several models included), joined to a
//! simulated network of phones that echo, stay silent or cannot be reached. The
//! PTY and TCP drivers in `pty.rs` and `server.rs` put it on a port that gammu,
//! Kamailio's `sms` module or our own driver can open.
//!
//! The core follows the house style: [`SimModem::handle_input`] and
//! [`SimModem::handle_timeout`] take bytes and time in, [`SimModem::poll_output`],
//! [`SimModem::poll_timeout`] and [`SimModem::poll_log`] give bytes, the next
//! deadline and the transcript out. No clock, no I/O, no panics on any input.

mod clock;
mod cmd_general;
mod cmd_sms;
mod config;
mod control;
mod delivery;
mod error;
mod inprocess;
mod line;
mod log;
mod modem;
mod network;
mod output;
mod power;
mod profile;
mod pty;
mod rng;
mod server;
mod state;
mod storage;
mod text_mode;

#[cfg(test)]
mod tests;

pub(crate) use config::parse_rate;
pub use config::{
    Fault, PartOrder, PhoneBehaviour, Registration, SimConfig, SimQuirk, StorageSizes,
};
pub use control::{ControlRequest, ControlResponse, SentSummary, control_path, send_control};
pub use error::SimError;
pub use inprocess::SimPort;
pub use log::{LogEntry, SimLog};
pub use modem::{SentSms, SimModem};
pub use profile::{Model, Profile};
pub use server::{Listen, ServeOptions, serve};
