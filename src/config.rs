//! The configuration file: TOML with a default for every key, so that no file
//! at all is a valid configuration. Unknown keys are errors (a typo must not be
//! silently ignored), and every error names its line and column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[database]`.
    pub database: Database,
    /// `[numbers]`.
    pub numbers: Numbers,
    /// `[sip]`.
    pub sip: Sip,
    /// `[imps]`.
    pub imps: Imps,
    /// `[bridge]`.
    pub bridge: Bridge,
    /// `[[modem]]`, one table per modem. None: the built-in simulated modem (demo).
    pub modem: Vec<Modem>,
    /// `[status]`.
    pub status: Status,
    /// `[federation]`: other domains.
    pub federation: Federation,
    /// `[presence]`: presence authorisation.
    pub presence: Presence,
    /// `[xcap]`: SIP users' lists and rules over XCAP.
    pub xcap: Xcap,
    /// `[msrp]`: chat sessions (INVITE + MSRP) on the SIP front end.
    pub msrp: Msrp,
}

/// `[msrp]`: session-mode IM (RFC 4975 MSRP over TCP) for SIP users. Off
/// by default: with it on, an INVITE with an MSRP offer to a subscriber or a
/// user is answered, and messages in the session go where MESSAGEs go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Msrp {
    /// Answer INVITEs for chat sessions (default false: INVITE gets 405).
    pub enabled: bool,
    /// The MSRP TCP listener (default `127.0.0.1:2855`; port 0 picks one).
    pub listen: String,
    /// The host written into our `a=path` (default: the listen address; set
    /// it when that is a wildcard or behind NAT).
    pub host: String,
    /// Sessions open at once (default 256), and from one SIP source address
    /// (default 16).
    pub max_sessions: usize,
    /// See `max_sessions`.
    pub max_sessions_per_address: usize,
    /// A session without a session timer ends after this long without
    /// traffic (default 30 min).
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// A connection must name its session within this (default 10 s).
    #[serde(deserialize_with = "duration")]
    pub handshake_timeout: Duration,
    /// Start line and headers of one chunk, in bytes (default 4096).
    pub max_header_bytes: usize,
    /// Content of one chunk, in bytes (default 16384); also the size of the
    /// chunks we send.
    pub max_chunk: usize,
    /// A reassembled message, in bytes (default 65536).
    pub max_message: usize,
    /// Chunks of one message (default 64).
    pub max_chunks_per_message: usize,
    /// Messages being reassembled at once in one session (default 4).
    pub max_messages_in_progress: usize,
    /// Deliver stored IMs to every registering user by INVITE + MSRP, not
    /// only to contacts whose feature tags (`+g.oma.sip-im`, the OMA CPM
    /// session ICSI) say they take chat sessions (default false).
    pub invite_all_users: bool,
}

impl Default for Msrp {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:2855".into(),
            host: String::new(),
            max_sessions: 256,
            max_sessions_per_address: 16,
            idle_timeout: Duration::from_secs(1800),
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 4096,
            max_chunk: 16 * 1024,
            max_message: 64 * 1024,
            max_chunks_per_message: 64,
            max_messages_in_progress: 4,
            invite_all_users: false,
        }
    }
}

/// `[presence]`: who may see a presentity when none of their rules says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Presence {
    /// What a watcher no rule of the presentity decides gets (default
    /// `confirm`: pending until the presentity answers).
    pub default_policy: DefaultPolicy,
}

/// `[presence] default_policy`: the handling of a watcher no rule decides
/// (RFC 5025 `sub-handling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultPolicy {
    /// Ask the presentity; pending until they answer.
    #[default]
    Confirm,
    /// Full presence for anyone.
    Allow,
    /// Refused.
    Block,
    /// Shown offline, without being told.
    PoliteBlock,
}

/// `[xcap]`: the XCAP server (RFC 4825) under `/xcap-root/` of the IMPS
/// listener, for SIP users' contact lists and presence rules. Users log in
/// with their SIP digest credentials (`[sip] realm`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Xcap {
    /// Serve XCAP (default true; it needs the IMPS listener).
    pub enabled: bool,
    /// Largest request body and largest document, in bytes (default and at
    /// most 65536).
    pub max_document: usize,
    /// How long a digest nonce is good for (default 5 min).
    #[serde(deserialize_with = "duration")]
    pub nonce_ttl: Duration,
}

impl Default for Xcap {
    fn default() -> Self {
        Self {
            enabled: true,
            max_document: 64 * 1024,
            nonce_ttl: Duration::from_secs(300),
        }
    }
}

/// `[federation]`: how the bridge meets other domains. With nothing set, no
/// request goes to another domain and none is accepted from one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Federation {
    /// Other names of this domain (`[sip] domain` and `[imps] domain` are
    /// always ours): an address is local only if its host is one of these or
    /// one of the addresses the bridge listens on. An IP address here counts
    /// as ours too (a NAT's public address that softphones use).
    pub domain_aliases: Vec<String>,
    /// Where requests for other domains without a route of their own go
    /// (`sip:host:port;transport=udp|tcp`).
    pub outbound_proxy: Option<String>,
    /// Digest credentials for the outbound proxy.
    pub outbound_username: Option<String>,
    /// Password for `outbound_username`.
    pub outbound_password: Option<String>,
    /// Find other domains' servers by DNS (RFC 3263 NAPTR/SRV/A) when neither
    /// a route nor an outbound proxy applies.
    pub dns: bool,
    /// Users of other domains may message the bridge's IM users.
    pub foreign_to_users: bool,
    /// Users of other domains may message SMS-only subscribers (costs SMS).
    pub foreign_to_sms: bool,
    /// `[[federation.domain]]`: the other domains the bridge knows.
    pub domain: Vec<PeerDomain>,
}

impl Default for Federation {
    fn default() -> Self {
        Self {
            domain_aliases: Vec::new(),
            outbound_proxy: None,
            outbound_username: None,
            outbound_password: None,
            dns: false,
            foreign_to_users: true,
            foreign_to_sms: false,
            domain: Vec::new(),
        }
    }
}

impl Federation {
    /// Checks the names and addresses: aliases and peer names are domain
    /// names, a peer is not one of our own domains (its users would be ours
    /// and theirs at once) nor named twice, and its addresses are IP
    /// addresses (requests are accepted by source address).
    fn validate(&self, sip_domain: &str, imps_domain: &str) -> Result<(), String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= 253
                && n.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
                })
        };
        let norm = crate::domains::normalise_host;
        let mut ours = vec![norm(sip_domain), norm(imps_domain)];
        for a in &self.domain_aliases {
            if !name_ok(a.trim()) {
                return Err(format!(
                    "federation.domain_aliases: {a:?} is not a domain name"
                ));
            }
            ours.push(norm(a));
        }
        let mut seen: Vec<String> = Vec::new();
        for d in &self.domain {
            if !name_ok(d.name.trim()) {
                return Err(format!(
                    "federation.domain: {:?} is not a domain name",
                    d.name
                ));
            }
            let n = norm(&d.name);
            if ours.contains(&n) {
                return Err(format!(
                    "federation.domain {:?} is one of this bridge's own domains",
                    d.name
                ));
            }
            if seen.contains(&n) {
                return Err(format!("federation.domain {:?} is listed twice", d.name));
            }
            seen.push(n);
            for a in &d.addresses {
                a.parse::<std::net::IpAddr>().map_err(|_| {
                    format!(
                        "federation.domain {:?}: address {a:?} is not an IP address",
                        d.name
                    )
                })?;
            }
            if d.password.is_some() && d.username.is_none() {
                return Err(format!(
                    "federation.domain {:?}: a password needs a username",
                    d.name
                ));
            }
        }
        Ok(())
    }
}

/// `[[federation.domain]]`: another domain, where its requests come from
/// and where ours for it go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerDomain {
    /// The domain (`otherdomain.test`).
    pub name: String,
    /// Its server, where requests for it go (`sip:host:port;transport=…`);
    /// none: the outbound proxy or DNS.
    pub proxy: Option<String>,
    /// Source addresses whose requests are accepted as from this domain.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Digest user name when its server challenges us.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<String>,
}

/// `[[modem]]`: one USB modem (or a modem behind ser2net).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modem {
    /// A name for logs and status (default `modem<N>`).
    #[serde(default)]
    pub name: Option<String>,
    /// `/dev/smsbridge/…`, `/dev/serial/by-id/…`, `/dev/ttyUSB2` or `tcp://host:port`.
    pub port: String,
    /// Baud rate of a serial port (default 115200).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// SIM PIN, if the SIM asks for one. A rejected PIN is never tried again.
    #[serde(default)]
    pub pin: Option<String>,
    /// Service centre to set (default: the SIM's).
    #[serde(default)]
    pub smsc: Option<String>,
}

fn default_baud() -> u32 {
    crate::modem::DEFAULT_BAUD
}

/// What to do when the outcome of a send is unknown (the PDU left, no answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeUnknown {
    /// Fail the message (the user gets a negative notification): no duplicates.
    Fail,
    /// Send it again: the recipient may get it twice.
    Requeue,
}

/// What a sender who asked for negative delivery notifications is told about a
/// message whose status report never came (`[bridge] delivery_unknown_notice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownNotice {
    /// The negative notification (IMDN `failed`, IMPS 410): it was not
    /// confirmed delivered.
    Failed,
    /// Each front end's neutral value: IMDN `error`, IMPS 202.
    Neutral,
}

/// A default report window longer than validity by this much: the service
/// centre reports an expired SMS itself at the end of its validity period, and
/// the report needs time to reach a modem that may be restarting.
pub const REPORT_MARGIN: Duration = Duration::from_secs(3600);

/// `[bridge]`: policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bridge {
    /// Most SMS one IM may take (default 6); longer IMs are refused (SIP 413).
    pub max_parts: usize,
    /// Put in front of every SMS, `{name}` being the sender's display name or
    /// user part (default `"{name}: "`; `""` for none). Left out for anonymous senders.
    pub sender_prefix: String,
    /// Whether senders may ask not to be named (`Privacy: id`); else SIP 433.
    pub allow_anonymous: bool,
    /// Where SMS from numbers no user knows or wrote to go: a user address, or
    /// none to record them as failed (default none).
    pub fallback_user: Option<String>,
    /// An SMS consisting of this word opts its sender out (default `STOP`).
    pub stop_keyword: String,
    /// How long to wait for the missing parts of a concatenated SMS (default 10m).
    #[serde(deserialize_with = "duration")]
    pub reassembly_timeout: Duration,
    /// How long an SMS for an offline user is kept and retried (default 7days).
    #[serde(deserialize_with = "duration")]
    pub inbound_expiry: Duration,
    /// How long an accepted IM may wait for a modem before it fails and its
    /// sender is told (default 1day).
    #[serde(deserialize_with = "duration")]
    pub outbox_expiry: Duration,
    /// Attempts per part on temporary errors before it fails (default 5).
    pub send_attempts: u32,
    /// `fail` (default) or `requeue` for sends with an unknown outcome.
    pub outcome_unknown: OutcomeUnknown,
    /// Relative validity period of sent SMS (default 2days).
    #[serde(deserialize_with = "duration")]
    pub validity: Duration,
    /// Most messages waiting in the outbox before new IMs get 503 (default 1000).
    pub queue_limit: usize,
    /// How long after a part was submitted its status report may still come;
    /// after that the part ends as delivery unknown. Default: `validity` plus
    /// one hour, at most 72h (how long a report can still be matched to its
    /// part); see [`Bridge::report_window`].
    #[serde(deserialize_with = "optional_duration")]
    pub report_window: Option<Duration>,
    /// `failed` (default) or `neutral`: the notification for a message whose
    /// delivery is unknown, for senders who asked for negative ones.
    pub delivery_unknown_notice: UnknownNotice,
}

impl Bridge {
    /// The report window in force, and why it is not the configured or derived
    /// value when it was shortened: a derived default (`validity` + one hour)
    /// is clamped to the time a report can still be matched to its part
    /// ([`crate::store::REPORT_WINDOW_SECS`]); a configured value is checked by
    /// [`Config::validate`] instead.
    pub fn report_window(&self) -> (Duration, Option<String>) {
        let most = report_window_max();
        match self.report_window {
            Some(w) => (w.min(most), None),
            None => {
                let derived = self.validity.saturating_add(REPORT_MARGIN);
                if derived > most {
                    let why = format!(
                        "bridge.report_window defaults to validity + 1h = {}, shortened to {}: \
                         a status report cannot be matched to its part after that",
                        humantime::format_duration(derived),
                        humantime::format_duration(most)
                    );
                    (most, Some(why))
                } else {
                    (derived, None)
                }
            }
        }
    }
}

fn report_window_max() -> Duration {
    Duration::from_secs(crate::store::REPORT_WINDOW_SECS.unsigned_abs())
}

impl Default for Bridge {
    fn default() -> Self {
        Self {
            max_parts: 6,
            sender_prefix: "{name}: ".into(),
            allow_anonymous: true,
            fallback_user: None,
            stop_keyword: "STOP".into(),
            reassembly_timeout: Duration::from_secs(600),
            inbound_expiry: Duration::from_secs(7 * 86400),
            outbox_expiry: Duration::from_secs(86400),
            send_attempts: 5,
            outcome_unknown: OutcomeUnknown::Fail,
            validity: Duration::from_secs(2 * 86400),
            queue_limit: 1000,
            report_window: None,
            delivery_unknown_notice: UnknownNotice::Failed,
        }
    }
}

/// `[status]`: the local HTTP endpoint for `smsbridge status` and Prometheus.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Status {
    /// Listen address (default `127.0.0.1:8426`); `""` to disable.
    pub listen: String,
    /// A bearer token that `/status` and `/metrics` then require
    /// (`Authorization: Bearer <token>`). Required when `listen` is not a
    /// loopback address; default none.
    pub token: String,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8426".into(),
            token: String::new(),
        }
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// `[database]`: where the SQLite file is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// The SQLite file (default `./smsbridge.db`).
    pub path: PathBuf,
    /// Group commit: most IMs made durable by one transaction and one fsync
    /// (default 256; 1 commits each on its own).
    pub group_commit_max: usize,
    /// Group commit: how long the first IM of a batch waits for others
    /// before the batch commits (default 2 ms; 0: only those already waiting).
    #[serde(deserialize_with = "duration")]
    pub group_commit_wait: Duration,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./smsbridge.db"),
            group_commit_max: 256,
            group_commit_wait: Duration::from_millis(2),
        }
    }
}

/// `[numbers]`: how telephone numbers are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Numbers {
    /// Country code for national numbers (`0…`), e.g. `"49"`. None: national
    /// numbers are refused.
    pub default_country_code: Option<String>,
}

/// `[sip]`: the SIP front end.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sip {
    /// The digest authentication realm (default `smsbridge`). Passwords are stored
    /// as HA1 for this realm: changing it needs every password set again.
    pub realm: String,
    /// The domain of subscriber addresses (`sip:+<E.164>@<domain>`), used in the
    /// From of SMS delivered as MESSAGE (default `localhost`).
    pub domain: String,
    /// UDP listen addresses (default `127.0.0.1:5060`).
    pub udp: Vec<String>,
    /// TCP listen addresses (default `127.0.0.1:5060`).
    pub tcp: Vec<String>,
    /// Peers (IP addresses) whose requests carry identities they authenticated
    /// themselves, e.g. the operator's Kamailio: no digest challenge for them.
    pub trusted_peers: Vec<String>,
    /// An upstream SIP server: SMS for users without a local registration are sent
    /// there, and the bridge can register with it as a client.
    pub upstream: Option<Upstream>,
    /// Accept only digest `qop=auth-int`, which covers the body as well as the
    /// request line (default false: `auth` too, which every softphone does).
    pub require_auth_int: bool,
    /// SIP over TCP: connections open at once (default 256).
    pub max_tcp_connections: usize,
    /// SIP over TCP: connections open at once from one address (default 32).
    pub max_tcp_connections_per_address: usize,
    /// SIP over TCP: time to send the rest of a message once it has begun
    /// (default 10 s).
    #[serde(deserialize_with = "duration")]
    pub tcp_message_timeout: Duration,
    /// RFC 3261 timer T1 in milliseconds (default 500). Requests we send are
    /// retransmitted from T1 on (UDP) and time out after 64·T1 (Timer F,
    /// 32 s by default); tests make it short.
    pub t1_ms: u64,
    /// Requests taken but not yet answered, at most (default 512); beyond
    /// that a request is answered 503 with Retry-After at once.
    pub max_in_flight: usize,
}

impl Default for Sip {
    fn default() -> Self {
        Self {
            realm: "smsbridge".into(),
            domain: "localhost".into(),
            udp: vec!["127.0.0.1:5060".into()],
            tcp: vec!["127.0.0.1:5060".into()],
            trusted_peers: Vec::new(),
            upstream: None,
            require_auth_int: false,
            max_tcp_connections: 256,
            max_tcp_connections_per_address: 32,
            tcp_message_timeout: Duration::from_secs(10),
            t1_ms: 500,
            max_in_flight: 512,
        }
    }
}

/// `[imps]`: the OMA IMPS front end (CSP 1.3 over HTTP, XML encoding).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Imps {
    /// Listen address (default `127.0.0.1:8080`); `""` to disable.
    pub listen: String,
    /// The domain of the UserIDs the server writes (`wv:+4917…@<domain>`);
    /// empty (the default): `[sip] domain`.
    pub domain: String,
    /// KeepAliveTime for a client that asks for none (default 5 min).
    #[serde(deserialize_with = "duration")]
    pub keep_alive: Duration,
    /// Shortest KeepAliveTime granted (default 30 s).
    #[serde(deserialize_with = "duration")]
    pub min_keep_alive: Duration,
    /// Longest KeepAliveTime (TimeToLive) granted (default 1 h).
    #[serde(deserialize_with = "duration")]
    pub max_keep_alive: Duration,
    /// ServerPollMin told to clients, in seconds (default 5).
    pub poll_min: u32,
    /// Most sessions at once (default 1000).
    pub max_sessions: usize,
    /// Most sessions of one user at once (default 8).
    pub max_sessions_per_user: usize,
    /// Whether a SessionID is accepted only from the address that logged in
    /// (default true; false for clients behind NAT whose address changes).
    pub bind_sessions_to_address: bool,
    /// HTTP connections open at once (default 256).
    pub max_connections: usize,
    /// HTTP connections open at once from one address (default 32).
    pub max_connections_per_address: usize,
    /// Time to send a request's head (default 10 s).
    #[serde(deserialize_with = "duration")]
    pub header_timeout: Duration,
    /// Time to send a request's body (default 10 s).
    #[serde(deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// Listen address of the standalone TCP CIR channel (`HELO`/`WVCI`),
    /// offered in ClientCapability-Response to clients that support it; it
    /// must be an address clients can reach (not `0.0.0.0`). `""` (the
    /// default): no CIR, clients poll.
    pub cir_tcp_listen: String,
    /// CIR connections open at once (default 1000, one per session).
    pub cir_tcp_max_connections: usize,
    /// CIR connections open at once from one address (default 32).
    pub cir_tcp_max_connections_per_address: usize,
    /// Requests read but not yet answered, at most (default 256); beyond that
    /// a request is answered at once with the busy status (HTTP 503 with
    /// Retry-After).
    pub max_in_flight: usize,
}

impl Default for Imps {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            domain: String::new(),
            keep_alive: Duration::from_secs(300),
            min_keep_alive: Duration::from_secs(30),
            max_keep_alive: Duration::from_secs(3600),
            poll_min: 5,
            max_sessions: 1000,
            max_sessions_per_user: 8,
            bind_sessions_to_address: true,
            max_connections: 256,
            max_connections_per_address: 32,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            cir_tcp_listen: String::new(),
            cir_tcp_max_connections: 1000,
            cir_tcp_max_connections_per_address: 32,
            max_in_flight: 256,
        }
    }
}

/// `[sip.upstream]`: the SIP server users are registered with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Where to send requests: `sip:host:port;transport=udp|tcp`.
    pub proxy: String,
    /// Register with it as this address of record (omit to not register).
    pub register_as: Option<String>,
    /// Digest user name for the registration (default: the AOR's user part).
    pub username: Option<String>,
    /// Digest password for the registration.
    pub password: Option<String>,
    /// Registration lifetime in seconds (default 600).
    #[serde(default = "default_register_expires")]
    pub expires: u32,
}

fn default_register_expires() -> u32 {
    600
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a wrong key or value.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Checks what TOML cannot: addresses, ports and numbers that must parse.
    pub fn validate(&self) -> Result<(), String> {
        for (i, m) in self.modem.iter().enumerate() {
            m.port.parse::<crate::modem::PortSpec>().map_err(|e| {
                format!(
                    "modem {}: {e}",
                    m.name.clone().unwrap_or_else(|| i.to_string())
                )
            })?;
        }
        for a in self.sip.udp.iter().chain(&self.sip.tcp) {
            a.parse::<std::net::SocketAddr>()
                .map_err(|_| format!("sip listen address {a:?} is not ip:port"))?;
        }
        for p in &self.sip.trusted_peers {
            p.parse::<std::net::IpAddr>()
                .map_err(|_| format!("sip.trusted_peers: {p:?} is not an IP address"))?;
        }
        self.federation
            .validate(&self.sip.domain, &self.imps.domain)?;
        if !self.imps.listen.is_empty() {
            self.imps
                .listen
                .parse::<std::net::SocketAddr>()
                .map_err(|_| format!("imps.listen {:?} is not ip:port", self.imps.listen))?;
        }
        if self.sip.max_in_flight == 0 || self.imps.max_in_flight == 0 {
            return Err("sip.max_in_flight and imps.max_in_flight must be at least 1".into());
        }
        if self.database.group_commit_max == 0 {
            return Err("database.group_commit_max must be at least 1".into());
        }
        if self.database.group_commit_wait > std::time::Duration::from_secs(1) {
            return Err("database.group_commit_wait must be at most 1s".into());
        }
        if self.imps.max_connections == 0 || self.imps.max_connections_per_address == 0 {
            return Err(
                "imps.max_connections and max_connections_per_address must be at least 1".into(),
            );
        }
        if self.imps.min_keep_alive > self.imps.max_keep_alive {
            return Err("imps.min_keep_alive is longer than imps.max_keep_alive".into());
        }
        if !self.imps.cir_tcp_listen.is_empty() {
            let addr = self
                .imps
                .cir_tcp_listen
                .parse::<std::net::SocketAddr>()
                .map_err(|_| {
                    format!(
                        "imps.cir_tcp_listen {:?} is not ip:port",
                        self.imps.cir_tcp_listen
                    )
                })?;
            // The address is told to clients, so it must be one they reach.
            if addr.ip().is_unspecified() {
                return Err(format!(
                    "imps.cir_tcp_listen {:?}: clients are told this address, so it must not be unspecified",
                    self.imps.cir_tcp_listen
                ));
            }
            if self.imps.cir_tcp_max_connections == 0
                || self.imps.cir_tcp_max_connections_per_address == 0
            {
                return Err("imps.cir_tcp_max_connections and cir_tcp_max_connections_per_address must be at least 1".into());
            }
        }
        if !self.status.listen.is_empty() {
            let addr = self
                .status
                .listen
                .parse::<std::net::SocketAddr>()
                .map_err(|_| format!("status.listen {:?} is not ip:port", self.status.listen))?;
            if !addr.ip().is_loopback() && self.status.token.is_empty() {
                return Err(format!(
                    "status.listen {:?} is reachable from other hosts: set status.token \
                     (it shows modems, queues and failures)",
                    self.status.listen
                ));
            }
        }
        if self.bridge.max_parts == 0 || self.bridge.max_parts > 255 {
            return Err(format!(
                "bridge.max_parts {} must be 1..=255",
                self.bridge.max_parts
            ));
        }
        if let Some(w) = self.bridge.report_window {
            let most = report_window_max();
            if w.is_zero() || w > most {
                return Err(format!(
                    "bridge.report_window {} must be more than 0s and at most {}: \
                     a status report cannot be matched to its part after that",
                    humantime::format_duration(w),
                    humantime::format_duration(most)
                ));
            }
        }
        Ok(())
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start).min(text.len());
            let before = text.get(..at).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("smsbridge.toml"))
    }

    #[test]
    fn nothing_is_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.database.path, PathBuf::from("./smsbridge.db"));
        assert_eq!(c.numbers.default_country_code, None);
        assert_eq!(c.sip.realm, "smsbridge");
        assert_eq!(c.imps.listen, "127.0.0.1:8080");
        assert_eq!(c.imps.keep_alive, Duration::from_secs(300));
    }

    #[test]
    fn imps_keys_are_read_and_checked() {
        let c =
            parse("[imps]\nlisten = \"\"\nkeep_alive = \"2m\"\ndomain = \"im.example\"\n").unwrap();
        assert_eq!(c.imps.listen, "");
        assert_eq!(c.imps.keep_alive, Duration::from_secs(120));
        assert_eq!(c.imps.domain, "im.example");
        assert!(c.validate().is_ok());
        let c = parse("[imps]\nlisten = \"nowhere\"\n").unwrap();
        assert!(c.validate().unwrap_err().contains("imps.listen"));
        assert!(parse("[imps]\nlisten_on = \"x\"\n").is_err());
        let c = parse("[imps]\ncir_tcp_listen = \"127.0.0.1:8081\"\n").unwrap();
        assert_eq!(c.imps.cir_tcp_listen, "127.0.0.1:8081");
        assert!(c.validate().is_ok());
        let c = parse("[imps]\ncir_tcp_listen = \"0.0.0.0:8081\"\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .contains("must not be unspecified")
        );
        let c = parse("[imps]\ncir_tcp_listen = \"8081\"\n").unwrap();
        assert!(c.validate().unwrap_err().contains("imps.cir_tcp_listen"));
    }

    #[test]
    fn the_presence_default_policy_is_confirm_and_takes_the_four_handlings() {
        assert_eq!(
            parse("").unwrap().presence.default_policy,
            DefaultPolicy::Confirm
        );
        for (text, want) in [
            ("confirm", DefaultPolicy::Confirm),
            ("allow", DefaultPolicy::Allow),
            ("block", DefaultPolicy::Block),
            ("polite-block", DefaultPolicy::PoliteBlock),
        ] {
            let c = parse(&format!("[presence]\ndefault_policy = \"{text}\"\n")).unwrap();
            assert_eq!(c.presence.default_policy, want);
        }
        assert!(parse("[presence]\ndefault_policy = \"polite_block\"\n").is_err());
        assert!(parse("[presence]\npolicy = \"allow\"\n").is_err());
    }

    #[test]
    fn keys_override_their_defaults_only() {
        let c = parse("[numbers]\ndefault_country_code = \"49\"\n").unwrap();
        assert_eq!(c.numbers.default_country_code.as_deref(), Some("49"));
        assert_eq!(c.sip.realm, "smsbridge");
        let c = parse("[database]\npath = \"/var/lib/smsbridge/db\"\n[sip]\nrealm = \"lab\"\n")
            .unwrap();
        assert_eq!(c.database.path, PathBuf::from("/var/lib/smsbridge/db"));
        assert_eq!(c.sip.realm, "lab");
    }

    #[test]
    fn msrp_section_is_off_by_default_and_takes_its_keys() {
        let c = parse("").unwrap();
        assert!(!c.msrp.enabled);
        assert_eq!(c.msrp.listen, "127.0.0.1:2855");
        assert_eq!(c.msrp.idle_timeout, Duration::from_secs(1800));
        let c = parse("[msrp]\nenabled = true\nlisten = \"127.0.0.1:0\"\nidle_timeout = \"2m\"\nmax_chunk = 100\n")
            .unwrap();
        assert!(c.msrp.enabled);
        assert_eq!(
            (c.msrp.max_chunk, c.msrp.idle_timeout),
            (100, Duration::from_secs(120))
        );
        assert!(parse("[msrp]\nbogus = 1\n").is_err());
    }

    #[test]
    fn xcap_section_has_defaults_and_takes_its_keys() {
        let c = parse("").unwrap();
        assert!(c.xcap.enabled);
        assert_eq!(c.xcap.max_document, 65_536);
        assert_eq!(c.xcap.nonce_ttl, Duration::from_secs(300));
        let c =
            parse("[xcap]\nenabled = false\nmax_document = 8192\nnonce_ttl = \"1m\"\n").unwrap();
        assert_eq!(
            c.xcap,
            Xcap {
                enabled: false,
                max_document: 8192,
                nonce_ttl: Duration::from_secs(60),
            }
        );
        assert!(parse("[xcap]\nroot = \"/x\"\n").is_err());
    }

    #[test]
    fn the_report_window_follows_validity_within_what_can_match() {
        let c = parse("").unwrap();
        assert_eq!(c.bridge.report_window, None);
        assert_eq!(c.bridge.delivery_unknown_notice, UnknownNotice::Failed);
        assert_eq!(
            c.bridge.report_window(),
            (Duration::from_secs(49 * 3600), None),
            "2 days of validity and an hour for the expiry report"
        );
        let c = parse("[bridge]\nvalidity = \"71h\"\n").unwrap();
        assert_eq!(
            c.bridge.report_window(),
            (Duration::from_secs(72 * 3600), None)
        );
        let c = parse("[bridge]\nvalidity = \"1week\"\n").unwrap();
        let (w, why) = c.bridge.report_window();
        assert_eq!(w, Duration::from_secs(72 * 3600));
        assert_eq!(
            why.as_deref(),
            Some(
                "bridge.report_window defaults to validity + 1h = 7days 1h, shortened to 3days: \
                 a status report cannot be matched to its part after that"
            )
        );
        assert!(
            c.validate().is_ok(),
            "a derived window is shortened, not refused"
        );

        let c = parse("[bridge]\nreport_window = \"90s\"\ndelivery_unknown_notice = \"neutral\"\n")
            .unwrap();
        assert_eq!(c.bridge.report_window(), (Duration::from_secs(90), None));
        assert_eq!(c.bridge.delivery_unknown_notice, UnknownNotice::Neutral);
        assert!(c.validate().is_ok());
        let c = parse("[bridge]\nreport_window = \"72h\"\n").unwrap();
        assert!(c.validate().is_ok(), "the longest a report can match");

        let c = parse("[bridge]\nreport_window = \"73h\"\n").unwrap();
        assert_eq!(
            c.validate().unwrap_err(),
            "bridge.report_window 3days 1h must be more than 0s and at most 3days: \
             a status report cannot be matched to its part after that"
        );
        let c = parse("[bridge]\nreport_window = \"0s\"\n").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .starts_with("bridge.report_window 0s must be")
        );
        let e = parse("[bridge]\ndelivery_unknown_notice = \"maybe\"\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("smsbridge.toml:2:27: unknown variant `maybe`"),
            "{e}"
        );
        let e = parse("[bridge]\nreport_window = \"soon\"\n").unwrap_err();
        assert!(
            e.to_string().starts_with("smsbridge.toml:2:17: \"soon\""),
            "{e}"
        );
    }

    #[test]
    fn federation_names_and_addresses_are_checked() {
        let ok = parse(
            "[sip]\ndomain = \"example.com\"\n[federation]\ndomain_aliases = [\"sms.example.com\"]\n\
             [[federation.domain]]\nname = \"otherdomain.test\"\naddresses = [\"127.0.0.2\", \"::1\"]\n",
        )
        .unwrap();
        assert!(ok.validate().is_ok());
        assert!(ok.federation.foreign_to_users);
        assert!(!ok.federation.foreign_to_sms);
        let err = |text: &str| parse(text).unwrap().validate().unwrap_err();
        assert_eq!(
            err(
                "[[federation.domain]]\nname = \"otherdomain.test\"\naddresses = [\"peer.test\"]\n"
            ),
            "federation.domain \"otherdomain.test\": address \"peer.test\" is not an IP address"
        );
        assert_eq!(
            err(
                "[sip]\ndomain = \"example.com\"\n[[federation.domain]]\nname = \"Example.COM.\"\n"
            ),
            "federation.domain \"Example.COM.\" is one of this bridge's own domains"
        );
        assert_eq!(
            err(
                "[[federation.domain]]\nname = \"a.test\"\n[[federation.domain]]\nname = \"A.test\"\n"
            ),
            "federation.domain \"A.test\" is listed twice"
        );
        assert_eq!(
            err("[federation]\ndomain_aliases = [\"\"]\n"),
            "federation.domain_aliases: \"\" is not a domain name"
        );
        assert_eq!(
            err("[[federation.domain]]\nname = \"b c\"\n"),
            "federation.domain: \"b c\" is not a domain name"
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("[database]\npath = \"x\"\n[numbers]\n  default_cc = \"49\"\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("smsbridge.toml:4:3: unknown field `default_cc`"),
            "{s}"
        );
        let e = parse("[sip]\nrealm = 5\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("smsbridge.toml:2:9: invalid type"),
            "{e}"
        );
        let e = parse("[sip\n").unwrap_err();
        assert!(e.to_string().starts_with("smsbridge.toml:1:"), "{e}");
    }
}
