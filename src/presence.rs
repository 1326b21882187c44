//! Presence as the bridge holds it, neither PIDF nor CSP: what a user says of
//! themself (open or not, how available, a note, what client), so that SIP
//! watchers of IMPS users, IMPS watchers of SIP users and watchers in other
//! domains all see the same thing. `sip::pidf` maps it to and from PIDF with
//! RPID (RFC 3863, 4479, 4480), `imps::presence` to and from the CSP's
//! presence attributes; `docs/presence-mapping.md` has the table.

/// How available someone says they are (IMPS `UserAvailability`; RPID
/// activities imply it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Willing to communicate (`AVAILABLE`).
    Available,
    /// Reachable, but would rather not be disturbed (`DISCREET`; RPID busy,
    /// on-the-phone, meeting…).
    Discreet,
    /// Not willing or able to communicate (`NOT_AVAILABLE`; RPID away…).
    NotAvailable,
}

/// The client someone uses (IMPS `ClientInfo`; a PIDF `dm:device` or tuple
/// note where the peer writes one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientInfo {
    /// `ClientType` (`MOBILE_PHONE`, `COMPUTER`, …) as the CSP spells it.
    pub client_type: Option<String>,
    /// `ClientProducer`.
    pub producer: Option<String>,
    /// `Model`.
    pub model: Option<String>,
}

/// One user's presence, front-end neutral.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// Reachable for messages now: PIDF `basic` open, IMPS `OnlineStatus` T.
    pub open: bool,
    /// How available, when they said.
    pub availability: Option<Availability>,
    /// RPID activities by their element name (`away`, `busy`,
    /// `on-the-phone`, …), in document order.
    pub activities: Vec<String>,
    /// Free text: PIDF `note`, IMPS `StatusText`.
    pub note: Option<String>,
    /// The client, when known.
    pub client: Option<ClientInfo>,
}

impl Presence {
    /// Online with nothing more said (a registration, a Login).
    pub fn online() -> Self {
        Self {
            open: true,
            ..Self::default()
        }
    }

    /// Offline (no registration, logged out, or what a polite block shows).
    pub fn offline() -> Self {
        Self::default()
    }
}
