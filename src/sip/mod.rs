//! The SIP front end: MESSAGE in and out (RFC 3428), our own registrar, presence
//! of subscribers (SUBSCRIBE/NOTIFY with PIDF, RFC 6665/3856/3863), IMDN in CPIM
//! (RFC 5438/3862) and digest authentication, on rsipstack's transports and
//! transactions. It knows no SQLite and no AT: it talks to the bridge through
//! [`crate::bridge::api`].
//!
//! Other domains (`[federation]`): `route` decides where their requests go
//! (a static route, the outbound proxy, or RFC 3263 through rsipstack's
//! resolver), `watch` holds our presence subscriptions to their users and
//! reads their NOTIFYs, `relay` carries a local SIP user's subscription to a
//! user of a peer domain.
//!
//! Chat sessions (`[msrp]`): `invite` answers an INVITE with an MSRP offer
//! (`sdp`) and keeps the session table; `msrp_conn` is the MSRP listener on
//! [`crate::msrp`].
//!
//! Layout: the protocol logic is sans-IO (`wire`, `body`, `cpim`, `imdn` and
//! `pidf` on [`crate::xml`], `digest`, `message`, `registrar`, `presence`,
//! `outbound`, `screen`, `route`, `watch`, `relay`, and the request handler
//! `uas`, whose only I/O is the bridge call); `endpoint`, `transport` and
//! `client` are the thin rsipstack/tokio glue.
//!
//! Addresses of record are `sip:user@host` with the host lower-cased and no
//! port; a host that is an IP address is taken to mean this bridge and becomes
//! `[sip] domain`. The host of a Request-URI naming a subscriber is not checked.

mod answered;
mod body;
mod client;
mod cpim;
pub(crate) mod digest;
mod endpoint;
#[doc(hidden)]
pub mod fuzz;
mod imdn;
mod invite;
mod message;
mod msrp_conn;
mod outbound;
pub(crate) mod pidf;
mod presence;
mod publish;
mod registrar;
mod relay;
mod route;
mod screen;
mod sdp;
mod transport;
mod uas;
mod watch;
mod winfo;
pub(crate) mod wire;

pub use endpoint::{SipError, SipFrontEnd};
