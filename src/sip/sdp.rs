//! The SDP of an MSRP session (RFC 4975 §8, RFC 4566, RFC 6135): only the
//! lines session-mode IM needs are read, strictly, from an offer; the answer
//! is written whole. Also the INVITE body itself: SDP alone, or
//! `multipart/mixed` with SDP and the first message (`message/cpim`, as the
//! RCS-e store-and-forward flow sends it).

use crate::msrp::MsrpUri;

/// What an offer for `m=message ... TCP/MSRP` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Offer {
    /// The offerer's MSRP URI (`a=path`, one hop: we do no relays).
    pub(crate) path: MsrpUri,
    /// `a=accept-types`, as listed.
    pub(crate) accept_types: Vec<String>,
    /// `a=setup` if given (RFC 6135).
    pub(crate) setup: Option<String>,
}

/// Why an offer cannot be taken: 488 with the reason (or 400 if it is not
/// SDP at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OfferError {
    /// Not readable SDP.
    #[error("bad SDP: {0}")]
    Malformed(String),
    /// Readable, but nothing we can answer.
    #[error("{0}")]
    NotAcceptable(String),
}

/// The largest SDP we read.
const MAX_SDP: usize = 8192;

/// Reads an offer: the first `m=message <port> TCP/MSRP *` section, its
/// `a=path`, `a=accept-types` and `a=setup` (session-level attributes count
/// when the media section lacks them).
pub(crate) fn read_offer(sdp: &[u8]) -> Result<Offer, OfferError> {
    let offer = read_media(sdp)?;
    if offer.setup.as_deref() == Some("passive") {
        // RFC 6135: the offerer would wait for us; we only take connections.
        return Err(OfferError::NotAcceptable(
            "a=setup:passive: the bridge does not connect out".into(),
        ));
    }
    Ok(offer)
}

/// Reads the answer to an offer of ours ([`offer`]): the answerer waits
/// for our connection (RFC 4975 §5.4), so `a=setup:active` is refused.
pub(crate) fn read_answer(sdp: &[u8]) -> Result<Offer, OfferError> {
    let answer = read_media(sdp)?;
    if answer.setup.as_deref() == Some("active") {
        return Err(OfferError::NotAcceptable(
            "a=setup:active in the answer: we connect, not they".into(),
        ));
    }
    Ok(answer)
}

/// The `m=message` stream of an offer or answer.
fn read_media(sdp: &[u8]) -> Result<Offer, OfferError> {
    if sdp.len() > MAX_SDP {
        return Err(OfferError::Malformed("longer than 8192 bytes".into()));
    }
    let text = std::str::from_utf8(sdp).map_err(|_| OfferError::Malformed("not UTF-8".into()))?;
    let mut session: Vec<(&str, &str)> = Vec::new();
    let mut media: Option<Vec<(&str, &str)>> = None;
    let mut found = false;
    let mut saw_v = false;
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        let (kind, value) = line
            .split_once('=')
            .filter(|(k, _)| k.len() == 1)
            .ok_or_else(|| OfferError::Malformed(format!("{line:?} is not <type>=<value>")))?;
        if !saw_v {
            if kind != "v" || value != "0" {
                return Err(OfferError::Malformed("does not start with v=0".into()));
            }
            saw_v = true;
            continue;
        }
        if kind == "m" {
            if found {
                break;
            }
            let f: Vec<&str> = value.split(' ').collect();
            if f.first() == Some(&"message") {
                let port_ok = f
                    .get(1)
                    .is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
                if f.get(2).is_some_and(|p| p.eq_ignore_ascii_case("TCP/MSRP")) && port_ok {
                    found = true;
                    media = Some(Vec::new());
                }
            }
            continue;
        }
        if kind == "a" {
            let (name, v) = value.split_once(':').unwrap_or((value, ""));
            match (&mut media, found) {
                (Some(m), true) => m.push((name, v)),
                (None, false) => session.push((name, v)),
                _ => {}
            }
        }
    }
    if !saw_v {
        return Err(OfferError::Malformed("empty".into()));
    }
    let media = media.ok_or_else(|| {
        OfferError::NotAcceptable(
            "no m=message TCP/MSRP stream (MSRP over TLS is not offered)".into(),
        )
    })?;
    let attr = |name: &str| {
        media
            .iter()
            .chain(session.iter())
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    };
    let path = attr("path").ok_or_else(|| OfferError::NotAcceptable("no a=path".into()))?;
    let hops: Vec<&str> = path.split_whitespace().collect();
    let [hop] = hops.as_slice() else {
        return Err(OfferError::NotAcceptable(
            "a=path through relays (RFC 4976) is not supported".into(),
        ));
    };
    let path = MsrpUri::parse(hop).map_err(|e| OfferError::Malformed(e.to_string()))?;
    if path.transport() != "tcp" || path.is_secure() {
        return Err(OfferError::NotAcceptable("only msrp: over tcp".into()));
    }
    let accept_types: Vec<String> = attr("accept-types")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if !accept_types
        .iter()
        .any(|t| t == "*" || t == "text/plain" || t == "message/cpim" || t == "text/*")
    {
        return Err(OfferError::NotAcceptable(
            "a=accept-types has neither text/plain nor message/cpim".into(),
        ));
    }
    let setup = attr("setup").map(str::to_ascii_lowercase);
    Ok(Offer {
        path,
        accept_types,
        setup,
    })
}

/// Our answer: one `m=message` stream on our listener, waiting for the
/// offerer to connect (RFC 4975 §5.4: the offerer connects; RFC 6135
/// `a=setup:passive` when the offer spoke of setup).
pub(crate) fn answer(ours: &MsrpUri, session_version: u64, offer: &Offer) -> Vec<u8> {
    let setup = offer.setup.is_some().then_some("passive");
    media(ours, session_version, setup)
}

/// Our offer, for a session we open to deliver stored IMs: we connect to
/// the answerer's path (RFC 4975 §5.4), `a=setup:active` (RFC 6135).
pub(crate) fn offer(ours: &MsrpUri, session_version: u64) -> Vec<u8> {
    media(ours, session_version, Some("active"))
}

fn media(ours: &MsrpUri, session_version: u64, setup: Option<&str>) -> Vec<u8> {
    let host = ours.host().trim_start_matches('[').trim_end_matches(']');
    let ip = if host.contains(':') { "IP6" } else { "IP4" };
    let port = ours.port().unwrap_or(2855);
    let mut s = format!(
        "v=0\r\no=smsbridge {session_version} {session_version} IN {ip} {host}\r\ns=-\r\n\
c=IN {ip} {host}\r\nt=0 0\r\nm=message {port} TCP/MSRP *\r\n\
a=accept-types:message/cpim text/plain\r\na=accept-wrapped-types:text/plain\r\n\
a=path:{ours}\r\n"
    );
    if let Some(setup) = setup {
        s.push_str(&format!("a=setup:{setup}\r\n"));
    }
    s.into_bytes()
}

/// The parts of an INVITE body: its SDP and, if it rides along, the first
/// message (Content-Type, bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InviteBody {
    pub(crate) sdp: Option<Vec<u8>>,
    pub(crate) message: Option<(String, Vec<u8>)>,
}

/// Splits an INVITE body by its Content-Type: `application/sdp`, a message
/// type alone, or `multipart/mixed` holding them.
pub(crate) fn split_invite_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<InviteBody, OfferError> {
    let ct = content_type.unwrap_or("application/sdp");
    let (mime, params) = super::wire::value_and_params(ct);
    let mime = mime.to_ascii_lowercase();
    let mut out = InviteBody {
        sdp: None,
        message: None,
    };
    if body.is_empty() {
        return Ok(out);
    }
    match mime.as_str() {
        "application/sdp" => out.sdp = Some(body.to_vec()),
        "multipart/mixed" | "multipart/related" => {
            let boundary = params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("boundary"))
                .and_then(|(_, v)| v.as_deref())
                .map(super::wire::unquote)
                .ok_or_else(|| OfferError::Malformed("multipart without boundary".into()))?;
            for (ct, part) in multipart(body, &boundary)? {
                let (pm, _) = super::wire::value_and_params(&ct);
                if pm.eq_ignore_ascii_case("application/sdp") {
                    out.sdp.get_or_insert(part);
                } else if out.message.is_none() {
                    out.message = Some((ct, part));
                }
            }
        }
        _ => out.message = Some((ct.to_owned(), body.to_vec())),
    }
    Ok(out)
}

/// The parts of a multipart body (RFC 2046 §5.1), each with its
/// Content-Type (text/plain when it has none).
fn multipart(body: &[u8], boundary: &str) -> Result<Vec<(String, Vec<u8>)>, OfferError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(OfferError::Malformed("bad boundary".into()));
    }
    let delim = format!("--{boundary}");
    let find = crate::msrp::codec::find;
    let bad = |why: &str| OfferError::Malformed(format!("multipart: {why}"));
    let mut at = if body.starts_with(delim.as_bytes()) {
        0
    } else {
        find(body, format!("\r\n{delim}").as_bytes()).ok_or_else(|| bad("no first boundary"))? + 2
    };
    let next = format!("\r\n{delim}");
    let mut parts = Vec::new();
    loop {
        let after = &body[at + delim.len()..];
        if after.starts_with(b"--") {
            return Ok(parts);
        }
        let after = after
            .strip_prefix(b"\r\n")
            .ok_or_else(|| bad("boundary not followed by CRLF"))?;
        let start = body.len() - after.len();
        let end = start + find(after, next.as_bytes()).ok_or_else(|| bad("no closing boundary"))?;
        let part = &body[start..end];
        let (head, content) = match find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None if part.starts_with(b"\r\n") => (&part[..0], &part[2..]),
            None => return Err(bad("a part without a blank line")),
        };
        let head = std::str::from_utf8(head).map_err(|_| bad("headers not UTF-8"))?;
        let ct = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("Content-Type"))
            .map_or_else(|| "text/plain".to_owned(), |(_, v)| v.trim().to_owned());
        parts.push((ct, content.to_vec()));
        if parts.len() > 8 {
            return Err(bad("more than 8 parts"));
        }
        at = end + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4975 §7.1's offer.
    const OFFER: &str = "v=0\r\no=alice 2890844526 2890844527 IN IP4 alice.example.com\r\n\
s= \r\nc=IN IP4 alice.example.com\r\nt=0 0\r\nm=message 7654 TCP/MSRP *\r\n\
a=accept-types:text/plain\r\na=path:msrp://alice.example.com:7654/jshA7weztas;tcp\r\n";

    #[test]
    fn reads_the_rfc_offer() {
        let o = read_offer(OFFER.as_bytes()).unwrap();
        assert_eq!(
            o.path.as_str(),
            "msrp://alice.example.com:7654/jshA7weztas;tcp"
        );
        assert_eq!(o.accept_types, ["text/plain"]);
        assert_eq!(o.setup, None);
    }

    #[test]
    fn answers_on_our_listener() {
        let o = read_offer(format!("{OFFER}a=setup:actpass\r\n").as_bytes()).unwrap();
        let ours = MsrpUri::tcp("127.0.0.1", 2855, "s3ss10n");
        assert_eq!(
            String::from_utf8(answer(&ours, 7, &o)).unwrap(),
            "v=0\r\no=smsbridge 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message 2855 TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\n\
a=accept-wrapped-types:text/plain\r\na=path:msrp://127.0.0.1:2855/s3ss10n;tcp\r\n\
a=setup:passive\r\n"
        );
    }

    #[test]
    fn our_offer_connects_out_and_reads_the_answer() {
        let ours = MsrpUri::tcp("127.0.0.1", 2855, "0ut5ess10n");
        let o = String::from_utf8(offer(&ours, 3)).unwrap();
        assert!(o.ends_with("a=path:msrp://127.0.0.1:2855/0ut5ess10n;tcp\r\na=setup:active\r\n"));
        let a = read_answer(format!("{OFFER}a=setup:passive\r\n").as_bytes()).unwrap();
        assert_eq!(a.path.port(), Some(7654));
        assert!(read_answer(format!("{OFFER}a=setup:active\r\n").as_bytes()).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        let not = |s: String| {
            assert!(
                matches!(read_offer(s.as_bytes()), Err(OfferError::NotAcceptable(_))),
                "{s}"
            )
        };
        not(OFFER.replace("TCP/MSRP", "TCP/TLS/MSRP"));
        not(OFFER.replace("m=message", "m=audio"));
        not(OFFER.replace("a=accept-types:text/plain", "a=accept-types:image/png"));
        not(OFFER.replace("a=path:msrp", "a=path:msrp://relay.example:1/x;tcp msrp"));
        not(format!("{OFFER}a=setup:passive\r\n"));
        not(OFFER.replace("a=path:", "a=x-path:"));
        for bad in ["", "x", "o=1\r\n", &OFFER.replace(";tcp", "")] {
            assert!(
                matches!(read_offer(bad.as_bytes()), Err(OfferError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn splits_an_rcs_invite_body() {
        let cpim = "From: <sip:a@x>\r\nTo: <sip:b@x>\r\n\r\nContent-Type: text/plain\r\n\r\nhi";
        let body = format!(
            "--b1\r\nContent-Type: application/sdp\r\n\r\n{OFFER}\r\n--b1\r\n\
Content-Type: message/cpim\r\n\r\n{cpim}\r\n--b1--\r\n"
        );
        let b =
            split_invite_body(Some("multipart/mixed;boundary=\"b1\""), body.as_bytes()).unwrap();
        assert_eq!(b.sdp.as_deref(), Some(OFFER.as_bytes()));
        assert_eq!(
            b.message,
            Some(("message/cpim".to_owned(), cpim.as_bytes().to_vec()))
        );
        let b = split_invite_body(Some("message/cpim"), cpim.as_bytes()).unwrap();
        assert_eq!(b.sdp, None);
        let b = split_invite_body(None, OFFER.as_bytes()).unwrap();
        assert!(b.message.is_none() && b.sdp.is_some());
        for bad in ["--b1\r\nx", "junk", "--b1\r\n\r\nno end"] {
            assert!(
                split_invite_body(Some("multipart/mixed;boundary=b1"), bad.as_bytes()).is_err()
            );
        }
    }
}
