//! The registrar's bookkeeping (RFC 3261 §10.3): contacts per address of
//! record, each with its expiry, several per user. No I/O; time (Unix seconds)
//! is an argument, so expiry is tested by passing a later `now`.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::wire::{Transport, parse_name_addr};

/// One registered contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    /// The Contact URI.
    pub(crate) uri: String,
    pub(crate) expires_at: u64,
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    /// Where the REGISTER came from, and how (a TCP contact is reached over
    /// the same connection while it is open).
    pub(crate) source: SocketAddr,
    pub(crate) transport: Transport,
    /// When it was last refreshed, to try the newest first.
    pub(crate) updated: u64,
    /// The Contact's feature tags say the device takes chat sessions
    /// (see [`takes_sessions`]).
    pub(crate) msrp: bool,
}

/// A REGISTER, reduced to what the registrar needs.
#[derive(Debug, Clone)]
pub(crate) struct Register<'a> {
    pub(crate) aor: &'a str,
    /// Contact header values, lists already split.
    pub(crate) contacts: Vec<&'a str>,
    pub(crate) expires: Option<&'a str>,
    pub(crate) call_id: &'a str,
    pub(crate) cseq: u32,
    pub(crate) source: SocketAddr,
    pub(crate) transport: Transport,
}

/// Why a REGISTER was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegisterError {
    /// 400.
    #[error("{0}")]
    Bad(String),
    /// 500: a request older than the binding (RFC 3261 §10.3 step 7).
    #[error("out of order REGISTER for {0}")]
    OutOfOrder(String),
    /// 403: too many contacts for one user.
    #[error("at most {0} contacts per user")]
    TooMany(usize),
}

/// Contacts of every address of record.
#[derive(Debug, Clone)]
pub(crate) struct Registrar {
    aors: HashMap<String, Vec<Binding>>,
    default_expires: u32,
    max_expires: u32,
    max_contacts: usize,
}

impl Default for Registrar {
    fn default() -> Self {
        Self::new(3600, 3600, 10)
    }
}

impl Registrar {
    pub(crate) fn new(default_expires: u32, max_expires: u32, max_contacts: usize) -> Self {
        Self {
            aors: HashMap::new(),
            default_expires,
            max_expires,
            max_contacts,
        }
    }

    /// Applies a REGISTER at `now`; returns the user's contacts afterwards with
    /// the seconds each has left (a REGISTER without Contact only lists them).
    pub(crate) fn register(
        &mut self,
        r: &Register<'_>,
        now: u64,
    ) -> Result<Vec<(String, u64)>, RegisterError> {
        let header_expires = match r.expires {
            Some(v) => Some(parse_expires(v)?),
            None => None,
        };
        let mut bindings: Vec<Binding> = self.live(r.aor, now);
        if r.contacts.iter().any(|c| c.trim() == "*") {
            if r.contacts.len() != 1 || header_expires != Some(0) {
                return Err(RegisterError::Bad(
                    "Contact: * needs Expires: 0 and no other contact".into(),
                ));
            }
            bindings.retain(|b| b.call_id == r.call_id && b.cseq >= r.cseq);
        }
        for value in r.contacts.iter().filter(|c| c.trim() != "*") {
            let na = parse_name_addr(value)
                .ok_or_else(|| RegisterError::Bad(format!("bad Contact {value:?}")))?;
            if na.addr.is_none() {
                return Err(RegisterError::Bad(format!("bad Contact URI {:?}", na.uri)));
            }
            let expires = match na.param("expires") {
                Some(v) => parse_expires(v)?,
                None => header_expires.unwrap_or(self.default_expires),
            }
            .min(self.max_expires);
            let existing = bindings.iter().position(|b| b.uri == na.uri);
            if let Some(i) = existing
                && bindings[i].call_id == r.call_id
                && r.cseq <= bindings[i].cseq
            {
                return Err(RegisterError::OutOfOrder(r.aor.to_owned()));
            }
            match (existing, expires) {
                (Some(i), 0) => {
                    bindings.remove(i);
                }
                (None, 0) => {}
                (existing, e) => {
                    let b = Binding {
                        uri: na.uri.clone(),
                        expires_at: now + u64::from(e),
                        call_id: r.call_id.to_owned(),
                        cseq: r.cseq,
                        source: r.source,
                        transport: r.transport,
                        updated: now,
                        msrp: takes_sessions(&na),
                    };
                    match existing {
                        Some(i) => bindings[i] = b,
                        None if bindings.len() >= self.max_contacts => {
                            return Err(RegisterError::TooMany(self.max_contacts));
                        }
                        None => bindings.push(b),
                    }
                }
            }
        }
        let listed = bindings
            .iter()
            .map(|b| (b.uri.clone(), b.expires_at - now))
            .collect();
        if bindings.is_empty() {
            self.aors.remove(r.aor);
        } else {
            self.aors.insert(r.aor.to_owned(), bindings);
        }
        Ok(listed)
    }

    fn live(&self, aor: &str, now: u64) -> Vec<Binding> {
        self.aors
            .get(aor)
            .map(|v| v.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    /// The user's live contacts, most recently refreshed first.
    pub(crate) fn contacts(&self, aor: &str, now: u64) -> Vec<Binding> {
        let mut v = self.live(aor, now);
        v.sort_by_key(|b| std::cmp::Reverse(b.updated));
        v
    }

    /// Drops expired contacts; returns the users left with none (now offline).
    pub(crate) fn purge(&mut self, now: u64) -> Vec<String> {
        let mut gone = Vec::new();
        self.aors.retain(|aor, v| {
            v.retain(|b| b.expires_at > now);
            if v.is_empty() {
                gone.push(aor.clone());
            }
            !v.is_empty()
        });
        gone
    }

    /// Every user with live contacts, sorted, for `smsbridge status`.
    pub(crate) fn snapshot(&self, now: u64) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = self
            .aors
            .iter()
            .map(|(aor, v)| {
                let uris = v
                    .iter()
                    .filter(|b| b.expires_at > now)
                    .map(|b| b.uri.clone())
                    .collect();
                (aor.clone(), uris)
            })
            .filter(|(_, v): &(String, Vec<String>)| !v.is_empty())
            .collect();
        out.sort();
        out
    }
}

/// Whether a Contact's feature tags (RFC 3840) say the device takes
/// session-mode IM: OMA SIMPLE IM's `+g.oma.sip-im`, or the OMA CPM / RCS
/// session ICSI in `+g.3gpp.icsi-ref`. `+sip.instance` alone only names a
/// device, and says nothing of what it takes.
fn takes_sessions(contact: &super::wire::NameAddr) -> bool {
    const CPM_SESSION: &str = "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.session";
    if contact.param("+g.oma.sip-im").is_some() {
        return true;
    }
    contact.param("+g.3gpp.icsi-ref").is_some_and(|v| {
        let v = super::wire::unquote(v)
            .replace("%3A", ":")
            .replace("%3a", ":");
        v.split(',')
            .any(|icsi| icsi.trim().eq_ignore_ascii_case(CPM_SESSION))
    })
}

/// An Expires value: delta-seconds (RFC 3261 §20.19); huge values saturate.
pub(crate) fn parse_expires(v: &str) -> Result<u32, RegisterError> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RegisterError::Bad(format!("bad expires {v:?}")));
    }
    Ok(v.parse::<u64>()
        .map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg<'a>(
        contacts: Vec<&'a str>,
        expires: Option<&'a str>,
        call_id: &'a str,
        cseq: u32,
    ) -> Register<'a> {
        Register {
            aor: "sip:alice@sms.example",
            contacts,
            expires,
            call_id,
            cseq,
            source: "127.0.0.1:5070".parse().unwrap(),
            transport: Transport::Udp,
        }
    }

    const A: &str = "sip:alice@10.0.0.1:5070";
    const B: &str = "sip:alice@10.0.0.2:5060;transport=tcp";

    #[test]
    fn several_contacts_expiry_and_removal() {
        let mut r = Registrar::new(3600, 3600, 10);
        let got = r
            .register(
                &reg(vec!["<sip:alice@10.0.0.1:5070>"], Some("60"), "c1", 1),
                1000,
            )
            .unwrap();
        assert_eq!(got, vec![(A.to_owned(), 60)]);
        let got = r
            .register(
                &reg(
                    vec!["<sip:alice@10.0.0.2:5060;transport=tcp>;expires=7200"],
                    None,
                    "c2",
                    1,
                ),
                1010,
            )
            .unwrap();
        assert_eq!(got, vec![(A.to_owned(), 50), (B.to_owned(), 3600)]);
        let c = r.contacts("sip:alice@sms.example", 1020);
        assert_eq!(c.iter().map(|b| b.uri.as_str()).collect::<Vec<_>>(), [B, A]);
        // A expires at 1060.
        assert_eq!(r.contacts("sip:alice@sms.example", 1060).len(), 1);
        r.purge(1060);
        assert_eq!(
            r.snapshot(1060),
            vec![("sip:alice@sms.example".to_owned(), vec![B.to_owned()])]
        );
        // Expires: 0 removes one contact; a fetch lists what is left.
        let got = r
            .register(
                &reg(
                    vec!["<sip:alice@10.0.0.2:5060;transport=tcp>"],
                    Some("0"),
                    "c2",
                    2,
                ),
                1070,
            )
            .unwrap();
        assert!(got.is_empty());
        assert!(r.snapshot(1070).is_empty());
        assert!(
            r.register(&reg(vec![], None, "c3", 1), 1070)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn star_refresh_and_errors() {
        let mut r = Registrar::new(3600, 600, 2);
        r.register(&reg(vec![A, B], None, "c1", 1), 0).unwrap();
        // Max expires clamps the default.
        assert_eq!(r.contacts("sip:alice@sms.example", 0)[0].expires_at, 600);
        assert_eq!(
            r.register(&reg(vec!["sip:alice@10.0.0.3"], None, "c9", 1), 0),
            Err(RegisterError::TooMany(2))
        );
        assert_eq!(
            r.register(&reg(vec![A], Some("60"), "c1", 1), 5),
            Err(RegisterError::OutOfOrder("sip:alice@sms.example".into()))
        );
        assert!(matches!(
            r.register(&reg(vec!["*"], Some("60"), "c1", 2), 5),
            Err(RegisterError::Bad(_))
        ));
        assert!(matches!(
            r.register(&reg(vec!["*", A], Some("0"), "c1", 2), 5),
            Err(RegisterError::Bad(_))
        ));
        assert!(matches!(
            r.register(&reg(vec![A], Some("soon"), "c1", 2), 5),
            Err(RegisterError::Bad(_))
        ));
        assert!(matches!(
            r.register(&reg(vec!["<not a uri>"], None, "c1", 2), 5),
            Err(RegisterError::Bad(_))
        ));
        assert_eq!(
            r.register(&reg(vec!["*"], Some("0"), "c1", 2), 5),
            Ok(vec![])
        );
        assert!(r.snapshot(5).is_empty());
        assert_eq!(parse_expires("99999999999"), Ok(u32::MAX));
    }

    #[test]
    fn feature_tags_tell_session_capable_contacts() {
        let mut r = Registrar::new(3600, 3600, 10);
        let contacts = vec![
            "<sip:alice@10.0.0.1:5070>;+g.oma.sip-im",
            "<sip:alice@10.0.0.2:5070>;+sip.instance=\"<urn:uuid:1>\"",
            "<sip:alice@10.0.0.3:5070>;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session\"",
            "<sip:alice@10.0.0.4:5070>;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"",
        ];
        r.register(&reg(contacts, None, "c1", 1), 0).unwrap();
        let mut got: Vec<(String, bool)> = r
            .contacts("sip:alice@sms.example", 0)
            .into_iter()
            .map(|b| (b.uri, b.msrp))
            .collect();
        got.sort();
        assert_eq!(
            got.iter().map(|(_, m)| *m).collect::<Vec<_>>(),
            [true, false, true, false],
            "{got:?}"
        );
    }
}
