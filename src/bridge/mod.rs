//! The decisions: who may send to whom, IM→SMS mapping, SMS→IM routing,
//! store-and-forward, delivery reports and the presence of subscribers. The only
//! module that sees both worlds; it knows no wire format.

pub mod api;
mod core;
mod im;
mod inbound;
mod notices;
pub mod policy;
#[cfg(test)]
mod tests;
mod work;

pub use core::{Bridge, Clock, ModemsReady, Shared, user_part};
pub use inbound::run_inbound;
pub use work::StoreWork;
