//! The decisions: who may send to whom, IM→SMS mapping, SMS→IM routing,
//! store-and-forward, delivery reports and the presence of subscribers. The only
//! module that sees both worlds; it knows no wire format.
//!
//! [`policy`] holds the decisions as pure functions of a snapshot and `now`;
//! the rest is glue that reads the snapshot, calls one and writes its outcome in
//! one transaction (`Store::atomically`), and hands front ends typed
//! [`api::Refusal`]s. The clock comes from [`Shared::now`], never from inside a
//! decision.

pub mod api;
mod authz;
mod core;
mod foreign;
mod im;
mod inbound;
mod notices;
pub mod policy;
#[cfg(test)]
mod prefs_tests;
#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod tests;
mod work;

pub use authz::{default_handling, replace_presence_rules};
pub use core::{Bridge, Clock, ModemsReady, Shared, user_part};
pub use inbound::run_inbound;
pub use work::{ModemNames, StoreWork};
