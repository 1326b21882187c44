//! smsbridge: an appliance daemon that drives a USB GSM/LTE modem with AT commands
//! in PDU mode and joins it to instant messaging, so that IM users can message
//! people who only have SMS. See DESIGN.md for the module map.

#![warn(missing_docs, unreachable_pub)]

pub mod bridge;
pub(crate) mod caps;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod domains;
pub mod imps;
pub mod metrics;
pub mod modem;
pub mod msrp;
pub mod pdu;
pub mod presence;
pub mod sim;
pub mod sip;
pub mod store;
pub mod xcap;
pub mod xml;
