//! The OMA IMPS front end: CSP 1.3 over HTTP in the XML and WBXML encodings. Login (with
//! the password, or the 4-way nonce/MD5 digest), ClientCapability, Service,
//! KeepAlive, Logout, polling for server-initiated primitives, SendMessage,
//! NewMessage or MessageNotification/GetMessage (offered until the client
//! confirms it has the message), DeliveryReport, contact lists, presence, reactive presence
//! authorisation and blocking. It knows
//! no SQLite and no AT: it talks to the bridge through
//! [`crate::bridge::api::ImApi`].
//!
//! Layout: `csp` (the envelope and Result codes, on [`crate::xml`]),
//! `session` (sessions, nonces, poll queues; no clock) and the request handler
//! `server` with `messages`, `lists`, `presence` and `auth` are sans-IO apart from the
//! bridge calls; `wbxml` is the WBXML codec with the CSP token tables;
//! `http` is the axum driver; `cir` is the standalone TCP CIR channel that
//! wakes idle clients.

mod auth;
pub mod cir;
pub mod csp;
#[doc(hidden)]
pub mod fuzz;
pub mod guard;
pub(crate) mod http;
mod lists;
mod messages;
#[cfg(test)]
mod offer_tests;
mod presence;
mod server;
pub mod session;
pub mod wbxml;

pub use http::{ImpsHttp, random_token, router, router_with_xcap, serve};
pub use messages::ImpsFrontEnd;
pub use server::{Random, Reply, Server, ServerConfig};
