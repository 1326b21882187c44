//! The CSP envelope (`WV-CSP-Message` → `Session` → `Transaction` →
//! `TransactionContent` → one primitive), its namespaces and Result codes.
//! Requests are read by local name, so CSP 1.1 and 1.2 XML clients are
//! understood too; answers are written in the client's version
//! ([`envelope_in`]).

use crate::xml::{self, Element, Rules, XmlError};

/// CSP 1.3 namespace of `WV-CSP-Message`.
pub const CSP_NS: &str = "http://www.openmobilealliance.org/DTD/IMPS-CSP1.3";
/// CSP 1.3 namespace of `TransactionContent`.
pub const TRC_NS: &str = "http://www.openmobilealliance.org/DTD/IMPS-TRC1.3";
/// CSP 1.3 namespace of `PresenceSubList`.
pub const PA_NS: &str = "http://www.openmobilealliance.org/DTD/IMPS-PA1.3";
/// The CSP versions (the WBXML tables are per version too).
pub use super::wbxml::Version;

/// The namespaces of `WV-CSP-Message`, `TransactionContent` and
/// `PresenceSubList` in a CSP version.
pub fn namespaces(v: Version) -> [&'static str; 3] {
    match v {
        Version::V11 => [
            "http://www.wireless-village.org/CSP1.1",
            "http://www.wireless-village.org/TRC1.1",
            "http://www.wireless-village.org/PA1.1",
        ],
        Version::V12 => [
            "http://www.openmobilealliance.org/DTD/WV-CSP1.2",
            "http://www.openmobilealliance.org/DTD/WV-TRC1.2",
            "http://www.openmobilealliance.org/DTD/WV-PA1.2",
        ],
        Version::V13 => [CSP_NS, TRC_NS, PA_NS],
    }
}

/// The HTTP content type of the XML encoding (CSP 1.3).
pub const CONTENT_TYPE: &str = "application/vnd.wv.csp+xml";
/// The content type CSP 1.1 and 1.2 clients use; accepted too.
pub const CONTENT_TYPE_OLD: &str = "application/vnd.wv.csp.xml";

/// CSP Result codes this server gives.
pub mod code {
    /// Successful.
    pub const OK: u16 = 200;
    /// Bad request: malformed, missing elements.
    pub const BAD_REQUEST: u16 = 400;
    /// Further authorization required (the 4-way Login's first answer).
    pub const UNAUTHORIZED: u16 = 401;
    /// Bad parameter.
    pub const BAD_PARAMETER: u16 = 402;
    /// Forbidden.
    pub const FORBIDDEN: u16 = 403;
    /// Service not supported.
    pub const NOT_SUPPORTED: u16 = 405;
    /// Invalid password.
    pub const INVALID_PASSWORD: u16 = 409;
    /// Unable to deliver.
    pub const UNABLE_TO_DELIVER: u16 = 410;
    /// Unsupported media type.
    pub const UNSUPPORTED_MEDIA: u16 = 415;
    /// Invalid transaction.
    pub const INVALID_TRANSACTION: u16 = 420;
    /// Invalid message id.
    pub const INVALID_MESSAGE_ID: u16 = 426;
    /// Internal server or proxy error.
    pub const SERVER_ERROR: u16 = 500;
    /// Not implemented.
    pub const NOT_IMPLEMENTED: u16 = 501;
    /// Service unavailable.
    pub const UNAVAILABLE: u16 = 503;
    /// Service not agreed.
    pub const NOT_AGREED: u16 = 506;
    /// Message queue full.
    pub const QUEUE_FULL: u16 = 507;
    /// Unknown user ID.
    pub const UNKNOWN_USER: u16 = 531;
    /// Recipient blocked the sender.
    pub const BLOCKED: u16 = 532;
    /// Recipient user does not exist / not logged in.
    pub const NOT_LOGGED_IN: u16 = 533;
    /// Message rejected (e.g. too long for SMS).
    pub const REJECTED: u16 = 538;
    /// Message expired (SMS validity period over).
    pub const EXPIRED: u16 = 542;
    /// No matching digest schema.
    pub const NO_DIGEST_SCHEMA: u16 = 543;
    /// Session expired.
    pub const SESSION_EXPIRED: u16 = 600;
    /// Forced logout.
    pub const FORCED_LOGOUT: u16 = 601;
    /// Invalid session / not logged in.
    pub const INVALID_SESSION: u16 = 604;
    /// New value not accepted.
    pub const VALUE_NOT_ACCEPTED: u16 = 605;
    /// Contact list does not exist.
    pub const NO_SUCH_LIST: u16 = 700;
    /// Contact list already exists.
    pub const LIST_EXISTS: u16 = 701;
    /// Invalid or unsupported presence attribute.
    pub const BAD_PRESENCE_ATTRIBUTE: u16 = 750;
}

/// Whether a transaction is a request or the answer to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `TransactionMode` Request.
    Request,
    /// `TransactionMode` Response (the client answering a server-initiated one).
    Response,
}

/// One received CSP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `SessionID` for an Inband session.
    pub session_id: Option<String>,
    /// `TransactionID`, if any.
    pub transaction_id: Option<String>,
    /// Request or response.
    pub mode: Mode,
    /// The one primitive inside `TransactionContent`.
    pub primitive: Element,
    /// The CSP version, by the namespace of `WV-CSP-Message` (1.3 when it
    /// names none this server knows).
    pub version: Version,
}

/// Why a body is not a CSP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CspError {
    /// Not XML we accept.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// Not WBXML we accept.
    #[error(transparent)]
    Wbxml(#[from] super::wbxml::WbxmlError),
    /// XML, but not a CSP message.
    #[error("not a CSP message: {0}")]
    Shape(String),
}

/// Reads a CSP message from an HTTP body.
pub fn parse(body: &[u8]) -> Result<Message, CspError> {
    from_root(xml::parse(body, &Rules::CSP)?)
}

/// Reads a CSP message from its root element, however it was encoded.
pub fn from_root(root: Element) -> Result<Message, CspError> {
    if root.name != "WV-CSP-Message" {
        return Err(CspError::Shape(format!("root element is {}", root.name)));
    }
    let session = root
        .child("Session")
        .ok_or_else(|| CspError::Shape("no Session".into()))?;
    let session_id = session
        .text_at(&["SessionDescriptor", "SessionID"])
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let transaction = session
        .child("Transaction")
        .ok_or_else(|| CspError::Shape("no Transaction".into()))?;
    let descriptor = transaction.child("TransactionDescriptor");
    let mode = match descriptor.and_then(|d| d.text_at(&["TransactionMode"])) {
        Some("Response") => Mode::Response,
        Some("Request") | None => Mode::Request,
        Some(other) => return Err(CspError::Shape(format!("TransactionMode {other:?}"))),
    };
    let transaction_id = descriptor
        .and_then(|d| d.text_at(&["TransactionID"]))
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let content = transaction
        .child("TransactionContent")
        .ok_or_else(|| CspError::Shape("no TransactionContent".into()))?;
    let [primitive] = content.children.as_slice() else {
        return Err(CspError::Shape(
            "TransactionContent must hold exactly one primitive".into(),
        ));
    };
    let version = Version::ALL
        .into_iter()
        .find(|v| root.ns.as_deref() == Some(namespaces(*v)[0]))
        .unwrap_or(Version::V13);
    Ok(Message {
        session_id,
        transaction_id,
        mode,
        primitive: primitive.clone(),
        version,
    })
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The session, for Inband messages.
    pub session_id: Option<String>,
    /// The transaction id (echoed for responses, ours for server requests).
    pub transaction_id: Option<String>,
    /// Request (server-initiated) or response.
    pub mode: Mode,
    /// `Poll` T: something waits for the client's Polling-Request.
    pub poll: bool,
    /// The primitive.
    pub primitive: Element,
}

/// Writes a CSP message (XML declaration included).
pub fn encode(o: &Outgoing) -> Vec<u8> {
    envelope(o).to_document().into_bytes()
}

/// A CSP message as its root element.
pub fn envelope(o: &Outgoing) -> Element {
    let mut sd = Element::new("SessionDescriptor");
    match &o.session_id {
        Some(id) => {
            sd = sd
                .with(Element::text("SessionType", "Inband"))
                .with(Element::text("SessionID", id));
        }
        None => sd = sd.with(Element::text("SessionType", "Outband")),
    }
    let mut td = Element::new("TransactionDescriptor").with(Element::text(
        "TransactionMode",
        match o.mode {
            Mode::Request => "Request",
            Mode::Response => "Response",
        },
    ));
    if let Some(t) = &o.transaction_id {
        td = td.with(Element::text("TransactionID", t));
    }
    if o.poll {
        td = td.with(Element::text("Poll", "T"));
    }
    Element::new("WV-CSP-Message").attr("xmlns", CSP_NS).with(
        Element::new("Session").with(sd).with(
            Element::new("Transaction").with(td).with(
                Element::new("TransactionContent")
                    .attr("xmlns", TRC_NS)
                    .with(o.primitive.clone()),
            ),
        ),
    )
}

/// A CSP message as its root element, in CSP `version`: its namespaces, and
/// only elements that version defines. The handlers write CSP 1.3 with the
/// elements of 1.2 that 1.3 removed; for 1.1 and 1.2 the elements new in 1.3
/// (`BlockListInUse`, …) are left out, for 1.3 the removed ones (`InUse`,
/// `AttListFunc`, `AcceptedContentLength`, …).
pub fn envelope_in(o: &Outgoing, version: Version) -> Element {
    let mut root = envelope(o);
    if version != Version::V13 {
        let from = namespaces(Version::V13);
        let to = namespaces(version);
        in_version(&mut root, version, &|uri| {
            from.iter().position(|f| *f == uri).map(|i| to[i])
        });
    } else {
        in_version(&mut root, version, &|_| None);
    }
    root
}

/// Writes a CSP message in CSP `version` (XML declaration included).
pub fn encode_in(o: &Outgoing, version: Version) -> Vec<u8> {
    envelope_in(o, version).to_document().into_bytes()
}

fn in_version(el: &mut Element, v: Version, ns: &dyn Fn(&str) -> Option<&'static str>) {
    for (k, val) in &mut el.attrs {
        if k == "xmlns"
            && let Some(uri) = ns(val)
        {
            *val = uri.to_owned();
        }
    }
    el.children.retain(|c| super::wbxml::defines(v, &c.name));
    for c in &mut el.children {
        in_version(c, v, ns);
    }
}

/// `<Result><Code>…</Code><Description>…</Description></Result>`.
pub fn result(code: u16, description: &str) -> Element {
    let mut r = Element::new("Result").with(Element::text("Code", &code.to_string()));
    if !description.is_empty() {
        r = r.with(Element::text("Description", description));
    }
    r
}

/// A bare `Status` primitive carrying a Result.
pub fn status(code: u16, description: &str) -> Element {
    Element::new("Status").with(result(code, description))
}

/// `T`/`F` as a bool (anything but `T` is false).
pub fn is_true(el: Option<&str>) -> bool {
    el.is_some_and(|s| s.eq_ignore_ascii_case("T"))
}

/// A bool as `T`/`F`.
pub fn tf(b: bool) -> &'static str {
    if b { "T" } else { "F" }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<WV-CSP-Message xmlns="http://www.openmobilealliance.org/DTD/IMPS-CSP1.3">
 <Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>
  <Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode>
   <TransactionID>t1</TransactionID></TransactionDescriptor>
   <TransactionContent xmlns="http://www.openmobilealliance.org/DTD/IMPS-TRC1.3">
    <Login-Request><UserID>wv:alice@sms.test</UserID><Password>pw</Password></Login-Request>
   </TransactionContent></Transaction></Session></WV-CSP-Message>"#;

    #[test]
    fn reads_the_envelope() {
        let m = parse(LOGIN.as_bytes()).unwrap();
        assert_eq!(m.session_id, None);
        assert_eq!(m.transaction_id.as_deref(), Some("t1"));
        assert_eq!(m.mode, Mode::Request);
        assert_eq!(m.primitive.name, "Login-Request");
        assert_eq!(m.primitive.text_at(&["UserID"]), Some("wv:alice@sms.test"));
    }

    #[test]
    fn refuses_what_is_not_one_primitive_in_an_envelope() {
        assert!(matches!(parse(b"<a/>"), Err(CspError::Shape(_))));
        let two = LOGIN.replace("</Login-Request>", "</Login-Request><Logout-Request/>");
        assert!(matches!(parse(two.as_bytes()), Err(CspError::Shape(_))));
        let none = LOGIN.replace("TransactionContent", "Other");
        assert!(matches!(parse(none.as_bytes()), Err(CspError::Shape(_))));
        assert!(matches!(parse(b"<WV"), Err(CspError::Xml(_))));
    }

    #[test]
    fn writes_a_response_that_reads_back() {
        let out = encode(&Outgoing {
            session_id: Some("s1".into()),
            transaction_id: Some("t9".into()),
            mode: Mode::Response,
            poll: true,
            primitive: status(code::OK, "done"),
        });
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><WV-CSP-Message xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-CSP1.3\">"));
        assert!(text.contains(
            "<TransactionContent xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-TRC1.3\">"
        ));
        assert!(text.contains("<SessionType>Inband</SessionType><SessionID>s1</SessionID>"));
        assert!(text.contains("<Poll>T</Poll>"));
        let m = parse(&out).unwrap();
        assert_eq!(m.session_id.as_deref(), Some("s1"));
        assert_eq!(m.mode, Mode::Response);
        assert_eq!(m.primitive.text_at(&["Result", "Code"]), Some("200"));
    }
}
