//! What the token tables are made of, the CSP versions and their public
//! identifiers, the attribute start tokens (the namespace declarations), and
//! which elements carry integers and dates as opaque data. Lookups in both
//! directions; the tables themselves are in `tags.rs` and `values.rs`.

use super::tags::TAGS;
use super::values::VALUES;

/// Defined in CSP 1.1.
pub(super) const V11: u8 = 1;
/// Defined in CSP 1.2.
pub(super) const V12: u8 = 2;
/// Defined in CSP 1.3.
pub(super) const V13: u8 = 4;
/// A 1.2 token that CSP 1.3 removed; still accepted and written in 1.3.
pub(super) const R13: u8 = 8;

/// One tag token.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tag {
    pub(super) page: u8,
    pub(super) token: u8,
    pub(super) name: &'static str,
    pub(super) versions: u8,
}

/// One value token (`EXT_T_0` index).
#[derive(Debug, Clone, Copy)]
pub(super) struct Value {
    pub(super) token: u8,
    pub(super) text: &'static str,
    pub(super) versions: u8,
}

/// The CSP version whose token tables a document uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// CSP 1.1 (Wireless Village).
    V11,
    /// CSP 1.2 (OMA).
    V12,
    /// CSP 1.3 (OMA IMPS).
    V13,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 3] = [Version::V11, Version::V12, Version::V13];

    /// The WBXML well-known public identifier.
    pub fn public_id(self) -> u32 {
        match self {
            Version::V11 => 0x10,
            Version::V12 => 0x11,
            Version::V13 => 0x12,
        }
    }

    /// The formal public identifier, as a literal public id in a string table.
    pub fn formal_public_id(self) -> &'static str {
        match self {
            Version::V11 => "-//WIRELESSVILLAGE//DTD CSP 1.1//EN",
            Version::V12 => "-//OMA//DTD WV-CSP 1.2//EN",
            Version::V13 => "-//OMA//DTD IMPS-CSP 1.3//EN",
        }
    }

    /// The version with this well-known public identifier.
    pub fn from_public_id(id: u32) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.public_id() == id)
    }

    /// The version with this formal public identifier.
    pub fn from_formal(id: &str) -> Option<Version> {
        Version::ALL
            .into_iter()
            .find(|v| v.formal_public_id().eq_ignore_ascii_case(id.trim()))
    }

    /// The bits of table entries this version reads and writes.
    fn mask(self) -> u8 {
        match self {
            Version::V11 => V11,
            Version::V12 => V12,
            Version::V13 => V13 | R13,
        }
    }
}

/// The element name of tag `token` on code page `page`.
pub(super) fn tag_name(v: Version, page: u8, token: u8) -> Option<&'static str> {
    TAGS.iter()
        .find(|t| t.page == page && t.token == token && t.versions & v.mask() != 0)
        .map(|t| t.name)
}

/// The code page and token of element `name`.
pub(super) fn tag_token(v: Version, name: &str) -> Option<(u8, u8)> {
    TAGS.iter()
        .find(|t| t.name == name && t.versions & v.mask() != 0)
        .map(|t| (t.page, t.token))
}

/// Whether CSP `v` defines element `name`; for 1.3 not the ones it removed
/// (which the codec still reads and writes under their 1.2 tokens).
pub(super) fn defines(v: Version, name: &str) -> bool {
    let strict = match v {
        Version::V13 => V13,
        other => other.mask(),
    };
    TAGS.iter()
        .any(|t| t.name == name && t.versions & strict != 0)
}

/// The text of value token `token` (`EXT_T_0`).
pub(super) fn value_text(v: Version, token: u32) -> Option<&'static str> {
    VALUES
        .iter()
        .find(|t| u32::from(t.token) == token && t.versions & v.mask() != 0)
        .map(|t| t.text)
}

/// The value token for exactly `text`.
pub(super) fn value_token(v: Version, text: &str) -> Option<u8> {
    VALUES
        .iter()
        .find(|t| t.text == text && t.versions & v.mask() != 0)
        .map(|t| t.token)
}

/// Attribute start tokens on attribute code page 0: every one is `xmlns`
/// with the start of a namespace URI; the version number follows as a string.
const XMLNS: &[(u8, &str, u8)] = &[
    (0x05, "http://www.wireless-village.org/CSP", V11 | V12 | V13),
    (0x06, "http://www.wireless-village.org/PA", V11 | V12 | V13),
    (0x07, "http://www.wireless-village.org/TRC", V11 | V12 | V13),
    (
        0x08,
        "http://www.openmobilealliance.org/DTD/WV-CSP",
        V12 | V13,
    ),
    (
        0x09,
        "http://www.openmobilealliance.org/DTD/WV-PA",
        V12 | V13,
    ),
    (
        0x0A,
        "http://www.openmobilealliance.org/DTD/WV-TRC",
        V12 | V13,
    ),
    (0x0B, "http://www.openmobilealliance.org/DTD/IMPS-CSP", V13),
    (0x0C, "http://www.openmobilealliance.org/DTD/IMPS-PA", V13),
    (0x0D, "http://www.openmobilealliance.org/DTD/IMPS-TRC", V13),
];

/// The namespace URI start of attribute start token `token` (page 0).
pub(super) fn xmlns_prefix(v: Version, token: u8) -> Option<&'static str> {
    XMLNS
        .iter()
        .find(|(t, _, vs)| *t == token && vs & v.mask() != 0)
        .map(|(_, p, _)| *p)
}

/// The attribute start token whose URI start is the longest prefix of `uri`.
pub(super) fn xmlns_token(v: Version, uri: &str) -> Option<(u8, &'static str)> {
    XMLNS
        .iter()
        .filter(|(_, p, vs)| vs & v.mask() != 0 && uri.starts_with(p))
        .max_by_key(|(_, p, _)| p.len())
        .map(|(t, p, _)| (*t, *p))
}

/// The version a document without a public identifier uses, told by the
/// attribute start token of its root's namespace (as Wireshark does).
pub(super) fn version_of_xmlns(token: u8) -> Option<Version> {
    match token {
        0x05..=0x07 => Some(Version::V11),
        0x08..=0x0A => Some(Version::V12),
        0x0B..=0x0D => Some(Version::V13),
        _ => None,
    }
}

/// How an element's content travels as WBXML `OPAQUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opaque {
    /// An unsigned integer, big-endian in 1 to 4 octets.
    Integer,
    /// A date and time in the CSP's 6-octet packing.
    DateTime,
}

/// The elements whose content is an integer or a date, and the versions in
/// which the CSP WBXML specification encodes it as opaque data (the search
/// counters also in 1.1 and 1.2, as libwbxml writes them).
const OPAQUE: &[(&str, Opaque, u8)] = &[
    ("Code", Opaque::Integer, V11 | V12 | V13),
    ("ContentSize", Opaque::Integer, V11 | V12 | V13),
    ("MessageCount", Opaque::Integer, V11 | V12 | V13),
    ("Validity", Opaque::Integer, V11 | V12 | V13),
    ("KeepAliveTime", Opaque::Integer, V11 | V12 | V13),
    ("TimeToLive", Opaque::Integer, V11 | V12 | V13),
    ("AcceptedContentLength", Opaque::Integer, V11 | V12 | R13),
    ("MultiTrans", Opaque::Integer, V11 | V12 | V13),
    ("ParserSize", Opaque::Integer, V11 | V12 | V13),
    ("ServerPollMin", Opaque::Integer, V11 | V12 | V13),
    ("TCPPort", Opaque::Integer, V11 | V12 | V13),
    ("UDPPort", Opaque::Integer, V11 | V12 | V13),
    ("HistoryPeriod", Opaque::Integer, V12 | V13),
    ("MaxWatcherList", Opaque::Integer, V12 | V13),
    ("SearchFindings", Opaque::Integer, V11 | V12 | V13),
    ("SearchID", Opaque::Integer, V11 | V12 | V13),
    ("SearchIndex", Opaque::Integer, V11 | V12 | V13),
    ("SearchLimit", Opaque::Integer, V11 | V12 | V13),
    ("AcceptedPullLength", Opaque::Integer, V13),
    ("AcceptedPushLength", Opaque::Integer, V13),
    ("AcceptedRichContentLength", Opaque::Integer, V13),
    ("AcceptedTextContentLength", Opaque::Integer, V13),
    ("SessionPriority", Opaque::Integer, V13),
    ("UserSessionLimit", Opaque::Integer, V13),
    ("MultiTransPerMessage", Opaque::Integer, V13),
    ("ContentPolicyLimit", Opaque::Integer, V13),
    ("ClientIMPriority", Opaque::Integer, V13),
    ("MaxPullLength", Opaque::Integer, V13),
    ("MaxPushLength", Opaque::Integer, V13),
    ("SegmentCount", Opaque::Integer, V13),
    ("SegmentReference", Opaque::Integer, V13),
    ("TryAgainTimeout", Opaque::Integer, V13),
    ("GroupContentLimit", Opaque::Integer, V13),
    ("MessageTotalCount", Opaque::Integer, V13),
    ("PairID", Opaque::Integer, V13),
    ("DateTime", Opaque::DateTime, V11 | V12 | V13),
    ("DeliveryTime", Opaque::DateTime, V11 | V12 | V13),
];

/// How element `name` carries opaque data in version `v`, if it does.
pub(super) fn opaque_kind(v: Version, name: &str) -> Option<Opaque> {
    OPAQUE
        .iter()
        .find(|(n, _, vs)| *n == name && vs & v.mask() != 0)
        .map(|(_, k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_within_each_version() {
        for v in Version::ALL {
            let mut seen = std::collections::HashSet::new();
            for t in TAGS.iter().filter(|t| t.versions & v.mask() != 0) {
                assert!(seen.insert((t.page, t.token)), "{v:?} {t:?} twice");
                assert_eq!(tag_name(v, t.page, t.token), Some(t.name), "{v:?} {t:?}");
                // A name on two pages (ContentType) is written with the first.
                let (page, token) = tag_token(v, t.name).unwrap();
                assert_eq!(tag_name(v, page, token), Some(t.name));
                assert!((0x05..=0x3F).contains(&t.token), "{t:?}");
            }
            for (name, _, _) in OPAQUE {
                if opaque_kind(v, name).is_some() {
                    assert!(tag_token(v, name).is_some(), "{v:?} {name}");
                }
            }
        }
    }

    #[test]
    fn csp_1_3_removed_what_its_specification_lists() {
        let removed: Vec<&str> = TAGS
            .iter()
            .filter(|t| t.versions & R13 != 0)
            .map(|t| t.name)
            .collect();
        assert_eq!(
            removed,
            [
                "InUse",
                "AttListFunc",
                "CAAUT",
                "REACT",
                "AcceptedCharset",
                "AcceptedContentLength",
                "CancelAuth-Request",
                "PresenceAuth-Request",
                "PresenceAuth-User",
                "AutoSubscribe",
                "GetReactiveAuthStatus-Request",
                "GetReactiveAuthStatus-Response",
                "Users",
            ]
        );
        // Gone from 1.3 without a trace, and new in 1.3.
        assert_eq!(tag_token(Version::V12, "GALS"), Some((0x02, 0x13)));
        assert_eq!(tag_token(Version::V13, "GALS"), None);
        assert_eq!(tag_token(Version::V12, "CreateList-Response"), None);
        assert_eq!(
            tag_token(Version::V13, "CreateList-Response"),
            Some((0x04, 0x21))
        );
        assert_eq!(value_text(Version::V11, 0x68), Some("IM"));
        assert_eq!(value_text(Version::V13, 0x68), Some("AP"));
    }

    #[test]
    fn public_ids_and_namespaces() {
        for v in Version::ALL {
            assert_eq!(Version::from_public_id(v.public_id()), Some(v));
            assert_eq!(Version::from_formal(v.formal_public_id()), Some(v));
        }
        assert_eq!(
            xmlns_token(
                Version::V13,
                "http://www.openmobilealliance.org/DTD/IMPS-TRC1.3"
            ),
            Some((0x0D, "http://www.openmobilealliance.org/DTD/IMPS-TRC"))
        );
        assert_eq!(
            xmlns_token(
                Version::V11,
                "http://www.openmobilealliance.org/DTD/IMPS-CSP1.3"
            ),
            None
        );
        assert_eq!(version_of_xmlns(0x08), Some(Version::V12));
    }
}
