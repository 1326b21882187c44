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
    /// RPID mood by its element name (`happy`, `sleepy`, …; IMPS
    /// `StatusMood`).
    pub mood: Option<String>,
    /// Free text: PIDF `note`, IMPS `StatusText`.
    pub note: Option<String>,
    /// The client, when known.
    pub client: Option<ClientInfo>,
}

impl Availability {
    /// What an RPID activity (RFC 4480 §3.2) says of availability: `None`
    /// for activities that say nothing of it (`unknown`, `other`, `tv`…).
    pub fn of_activity(activity: &str) -> Option<Self> {
        match activity {
            "away" | "holiday" | "permanent-absence" | "sleeping" | "steering" | "travel"
            | "vacation" => Some(Self::NotAvailable),
            "appointment" | "breakfast" | "busy" | "dinner" | "in-transit" | "looking-for-work"
            | "meal" | "meeting" | "on-the-phone" | "performance" | "playing" | "presentation"
            | "shopping" | "spectator" | "working" | "worship" => Some(Self::Discreet),
            _ => None,
        }
    }

    /// The RPID activity written for an availability when no activity was
    /// given (`None` for available: RPID has no activity for it).
    pub fn activity(self) -> Option<&'static str> {
        match self {
            Self::Available => None,
            Self::Discreet => Some("busy"),
            Self::NotAvailable => Some("away"),
        }
    }
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
