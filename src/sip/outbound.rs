//! Requests the bridge sends: an SMS as MESSAGE, an IMDN, a presence NOTIFY.
//! This file decides their content and how a response ends a delivery; the
//! glue in `client.rs` adds Via, sends, retries on a digest challenge.

use super::cpim;
use super::imdn::{self, Imdn};
use super::pidf;
use super::presence::Subscription;
use super::route::Route;
use super::winfo;
use crate::bridge::api::{
    DeliveryNotice, DeliveryResult, ForeignIm, ImEnvelope, SmsToIm, WatchDecision,
};
use crate::presence::Presence;
use crate::store::BodyFormat;

/// A request to send, before the transport layer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutRequest {
    pub(crate) method: &'static str,
    pub(crate) request_uri: String,
    /// Where to send it (a URI: its host, port and transport), when it is
    /// not the Request-URI: a route or the upstream proxy.
    pub(crate) next_hop: Option<String>,
    /// The From value without tag; the tag is `from_tag`.
    pub(crate) from: String,
    pub(crate) from_tag: String,
    /// The To value, including any tag.
    pub(crate) to: String,
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// `sip:<user>@<domain>` for a sender: `+E164` as is, an alphanumeric sender
/// percent-encoded (RFC 3261 §25.1 user unreserved set); a user of another
/// domain (`sip:jane@otherdomain.test`) keeps their address.
pub(crate) fn subscriber_uri(number: &str, domain: &str) -> String {
    if number.starts_with("sip:") && number.contains('@') {
        return number.to_owned();
    }
    let mut user = String::new();
    for b in number.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            user.push(char::from(b));
        } else {
            user.push_str(&format!("%{b:02X}"));
        }
    }
    format!("sip:{user}@{domain}")
}

/// The SIP identity of a local user for another domain: a `sip:`/`sips:`
/// AOR as it is, an IMPS UserID (`wv:harry@example.com`, `wv:harry`) or a
/// bare user part as `sip:harry@<domain>`, so the other side sees an address
/// it can answer.
pub(crate) fn local_sip_uri(address: &str, domain: &str) -> String {
    let a = address.trim();
    let lower = a.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        return a.to_owned();
    }
    let user = a
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("wv:"))
        .map_or(a, |_| &a[3..]);
    let user = user.split_once('@').map_or(user, |(u, _)| u);
    subscriber_uri(user, domain)
}

/// A display name as a quoted string, quotes and controls removed.
pub(crate) fn quoted_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    format!("\"{clean}\"")
}

fn name_addr(display: Option<&str>, uri: &str) -> String {
    match display.filter(|d| !d.trim().is_empty()) {
        Some(d) => format!("{} <{uri}>", quoted_name(d)),
        None => format!("<{uri}>"),
    }
}

/// Where a user is reached: a registered contact, or the upstream proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) request_uri: String,
    pub(crate) next_hop: Option<String>,
}

/// Identifiers a new request needs (random in the glue, fixed in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ids {
    pub(crate) call_id: String,
    pub(crate) tag: String,
}

/// An SMS for a user as one MESSAGE (RFC 3428): `text/plain;charset=UTF-8`,
/// or CPIM with From, To and DateTime when the user wants `message/cpim`.
pub(crate) fn sms_message(msg: &SmsToIm, domain: &str, target: &Target, ids: Ids) -> OutRequest {
    let from_uri = subscriber_uri(&msg.from, domain);
    let from = name_addr(msg.from_name.as_deref(), &from_uri);
    let enveloped = msg
        .envelope
        .as_ref()
        .filter(|e| e.cpim || msg.body_format == BodyFormat::Cpim);
    let (content_type, body) = match (enveloped, msg.body_format) {
        (Some(e), _) => ("message/cpim", enveloped_body(msg, e, &from)),
        (None, BodyFormat::Plain) => ("text/plain;charset=UTF-8", msg.text.as_bytes().to_vec()),
        (None, BodyFormat::Cpim) => {
            let to = format!("<{}>", msg.to_user);
            let when = msg.received.to_string();
            let body = cpim::build(
                &[("From", &from), ("To", &to), ("DateTime", &when)],
                &[("Content-Type", "text/plain; charset=utf-8")],
                msg.text.as_bytes(),
            );
            ("message/cpim", body)
        }
    };
    OutRequest {
        method: "MESSAGE",
        request_uri: target.request_uri.clone(),
        next_hop: target.next_hop.clone(),
        from,
        from_tag: ids.tag,
        to: format!("<{}>", msg.to_user),
        call_id: ids.call_id,
        cseq: 1,
        headers: Vec::new(),
        content_type: Some(content_type.into()),
        body,
    }
}

/// An IM from another user as CPIM that keeps its envelope: From, To, the
/// sender's DateTime and `imdn.Message-ID`, and `Disposition-Notification:
/// display` only when the sender asked for it (the bridge gives delivery
/// notifications itself, so it never asks the client for them).
fn enveloped_body(msg: &SmsToIm, e: &ImEnvelope, from: &str) -> Vec<u8> {
    let to = format!("<{}>", msg.to_user);
    let when = e.sent_at.to_string();
    let mut headers = vec![
        ("From", from),
        ("To", to.as_str()),
        ("DateTime", when.as_str()),
        ("NS", "imdn <urn:ietf:params:imdn>"),
        ("imdn.Message-ID", e.message_id.as_str()),
    ];
    if e.display {
        headers.push(("imdn.Disposition-Notification", "display"));
    }
    cpim::build(
        &headers,
        &[("Content-Type", "text/plain; charset=utf-8")],
        msg.text.as_bytes(),
    )
}

/// A local user's IM for a user of another domain, sent on `route`:
/// `text/plain;charset=UTF-8`, or CPIM (RFC 3862) with `imdn.Message-ID`
/// and `imdn.Disposition-Notification` (RFC 5438 §6) when delivery
/// notifications were asked for. `from_uri` is the sender's SIP identity
/// ([`local_sip_uri`]), `now` the CPIM DateTime.
pub(crate) fn foreign_message(
    msg: &ForeignIm,
    from_uri: &str,
    route: &Route,
    ids: Ids,
    message_id: &str,
    now: &str,
) -> OutRequest {
    let from = name_addr(msg.display_name.as_deref(), from_uri);
    let to = format!("<{}>", msg.to);
    let mut wanted = Vec::new();
    if msg.notify.delivered {
        wanted.push("positive-delivery");
    }
    if msg.notify.failed {
        wanted.push("negative-delivery");
    }
    let (content_type, body) = if wanted.is_empty() {
        ("text/plain;charset=UTF-8", msg.text.as_bytes().to_vec())
    } else {
        let body = cpim::build(
            &[
                ("From", &from),
                ("To", &to),
                ("NS", "imdn <urn:ietf:params:imdn>"),
                ("imdn.Message-ID", message_id),
                ("DateTime", now),
                ("imdn.Disposition-Notification", &wanted.join(", ")),
            ],
            &[("Content-Type", "text/plain; charset=utf-8")],
            msg.text.as_bytes(),
        );
        ("message/cpim", body)
    };
    OutRequest {
        method: "MESSAGE",
        request_uri: msg.to.clone(),
        next_hop: route.next_hop.clone(),
        from,
        from_tag: ids.tag,
        to,
        call_id: ids.call_id,
        cseq: 1,
        headers: Vec::new(),
        content_type: Some(content_type.into()),
        body,
    }
}

/// An IMDN MESSAGE (RFC 5438 §7.2.1.1) for the user who sent an IM.
pub(crate) fn imdn_message(
    n: &DeliveryNotice,
    domain: &str,
    target: &Target,
    ids: Ids,
    new_message_id: &str,
) -> OutRequest {
    let (from_uri, body) = imdn_body(n, domain, new_message_id);
    OutRequest {
        method: "MESSAGE",
        request_uri: target.request_uri.clone(),
        next_hop: target.next_hop.clone(),
        from: format!("<{from_uri}>"),
        from_tag: ids.tag,
        to: format!("<{}>", n.to_user),
        call_id: ids.call_id,
        cseq: 1,
        headers: Vec::new(),
        content_type: Some("message/cpim".into()),
        body,
    }
}

/// The IMDN about `n` as a CPIM body, and whom it is from: the user the IM
/// went to (in our domain) or the subscriber's address. A MESSAGE carries it
/// (`imdn_message`), and so does a SEND in the sender's chat session.
pub(crate) fn imdn_body(
    n: &DeliveryNotice,
    domain: &str,
    new_message_id: &str,
) -> (String, Vec<u8>) {
    let from_uri = match &n.recipient_user {
        Some(user) => subscriber_uri(user, domain),
        None => subscriber_uri(&n.recipient, domain),
    };
    let at = n.at.to_string();
    let doc = Imdn::for_notice(n, &at, &from_uri);
    let body = imdn::notification_body(&from_uri, &n.to_user, new_message_id, &at, &doc);
    (from_uri, body)
}

/// A NOTIFY in a presence subscription. `state` is the Subscription-State
/// value; an active one carries the PIDF document: the real one when the
/// presentity allows the watcher, an offline one when they polite-block
/// them. A pending or ended subscription's NOTIFY has no body, and neither
/// has a `presence.winfo` one here (its documents come with the news).
pub(crate) fn presence_notify(
    s: &Subscription,
    state: &str,
    domain: &str,
    contact: &str,
) -> OutRequest {
    let entity = match &s.im_user {
        Some(u) => format!("sip:{}@{domain}", u.user_part),
        None => subscriber_uri(&s.msisdn, domain),
    };
    let active = state.starts_with("active") && s.winfo.is_none();
    let body = active.then(|| match (&s.im_user, s.decision) {
        (_, WatchDecision::PoliteBlock) => {
            pidf::presence_document(&entity, &entity, &Presence::offline())
        }
        (Some(u), _) => pidf::presence_document(&entity, &entity, &u.presence),
        (None, _) => pidf::document(&entity, &s.msisdn, s.unavailable.as_deref()),
    });
    dialog_notify(s, state, contact, body)
}

/// A NOTIFY in the `presence.winfo` subscription `s` with this watcherinfo
/// document.
pub(crate) fn winfo_notify(
    s: &Subscription,
    state: &str,
    contact: &str,
    doc: String,
) -> OutRequest {
    let mut out = dialog_notify(s, state, contact, None);
    out.content_type = Some(winfo::MIME.into());
    out.body = doc.into_bytes();
    out
}

/// A NOTIFY in the subscription dialog `s` (we are its notifier), with
/// this Subscription-State and PIDF document, if any.
pub(crate) fn dialog_notify(
    s: &Subscription,
    state: &str,
    contact: &str,
    pidf: Option<String>,
) -> OutRequest {
    let package = if s.winfo.is_some() {
        winfo::EVENT
    } else {
        "presence"
    };
    let event = match &s.event_id {
        Some(id) => format!("{package};id={id}"),
        None => package.into(),
    };
    let mut headers = vec![
        ("Event".to_owned(), event),
        ("Subscription-State".to_owned(), state.to_owned()),
        ("Contact".to_owned(), format!("<{contact}>")),
    ];
    for r in &s.route_set {
        headers.push(("Route".to_owned(), r.clone()));
    }
    OutRequest {
        method: "NOTIFY",
        request_uri: s.remote_target.clone(),
        next_hop: s
            .route_set
            .first()
            .map(|r| {
                r.trim()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .or_else(|| s.flow.clone()),
        from: format!("<{}>", s.local_uri),
        from_tag: s.local_tag.clone(),
        to: format!("<{}>;tag={}", s.remote_uri, s.remote_tag),
        call_id: s.call_id.clone(),
        cseq: s.local_cseq,
        headers,
        content_type: pidf.is_some().then(|| "application/pidf+xml".into()),
        body: pidf.map(String::into_bytes).unwrap_or_default(),
    }
}

/// How a final response (or a local timeout, 408) ends a delivery: 2xx
/// delivered; 408, 480 and 503 (also what a dead connection gives) retried;
/// other 3xx–6xx failed.
pub(crate) fn classify(code: u16) -> DeliveryResult {
    match code {
        200..=299 => DeliveryResult::Delivered,
        408 | 480 | 503 => DeliveryResult::Retry(format!("SIP {code}")),
        _ => DeliveryResult::Failed(format!("SIP {code}")),
    }
}

/// The result of sending to several contacts at once: the first 2xx wins;
/// otherwise retry if any attempt may succeed later, else failed.
pub(crate) fn combine(results: &[DeliveryResult]) -> DeliveryResult {
    if results.contains(&DeliveryResult::Delivered) {
        return DeliveryResult::Delivered;
    }
    if let Some(r) = results
        .iter()
        .find(|r| matches!(r, DeliveryResult::Retry(_)))
    {
        return r.clone();
    }
    results
        .first()
        .cloned()
        .unwrap_or_else(|| DeliveryResult::Retry("not registered".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::api::{FrontEnd, InboundId, UnixTime};

    fn sms(format: BodyFormat) -> SmsToIm {
        SmsToIm {
            envelope: None,
            inbound: InboundId(1),
            to_user: "sip:alice@sms.example".into(),
            from: "+491715550001".into(),
            from_name: Some("Bob \"B\"".into()),
            text: "Hallo 👋".into(),
            received: UnixTime(1_777_636_800),
            incomplete: false,
            body_format: format,
        }
    }

    fn target() -> Target {
        Target {
            request_uri: "sip:alice@127.0.0.1:5070".into(),
            next_hop: None,
        }
    }

    fn ids() -> Ids {
        Ids {
            call_id: "c1".into(),
            tag: "t1".into(),
        }
    }

    #[test]
    fn sms_as_plain_and_cpim() {
        let r = sms_message(&sms(BodyFormat::Plain), "sms.example", &target(), ids());
        assert_eq!(r.from, "\"Bob B\" <sip:+491715550001@sms.example>");
        assert_eq!(r.to, "<sip:alice@sms.example>");
        assert_eq!(r.content_type.as_deref(), Some("text/plain;charset=UTF-8"));
        assert_eq!(r.body, "Hallo 👋".as_bytes());
        let r = sms_message(&sms(BodyFormat::Cpim), "sms.example", &target(), ids());
        assert_eq!(r.content_type.as_deref(), Some("message/cpim"));
        let c = cpim::parse(&r.body).unwrap();
        assert_eq!(
            c.header("From"),
            Some("\"Bob B\" <sip:+491715550001@sms.example>")
        );
        assert_eq!(c.header("To"), Some("<sip:alice@sms.example>"));
        assert_eq!(c.header("DateTime"), Some("2026-05-01T12:00:00Z"));
        assert_eq!(c.body, "Hallo 👋".as_bytes());
    }

    /// A delivered notice about an SMS to +491715550001.
    fn sms_notice() -> DeliveryNotice {
        DeliveryNotice {
            displayed: false,
            recipient_user: None,
            to_user: "sip:alice@sms.example".into(),
            front_end: FrontEnd::Sip,
            im_message_id: "m-7".into(),
            recipient: "+491715550001".into(),
            delivered: true,
            neutral: false,
            at: UnixTime(1_777_636_800),
            reason: None,
            cause: None,
        }
    }

    #[test]
    fn imdn_request() {
        let n = sms_notice();
        let r = imdn_message(&n, "sms.example", &target(), ids(), "n-1");
        assert_eq!(r.content_type.as_deref(), Some("message/cpim"));
        let c = cpim::parse(&r.body).unwrap();
        assert_eq!(c.ns_header(cpim::IMDN_NS, "Message-ID"), Some("n-1"));
        let x = Imdn::from_xml(std::str::from_utf8(&c.body).unwrap()).unwrap();
        assert_eq!(x.message_id, "m-7");
        assert_eq!(x.status, "delivered");
        assert_eq!(
            x.recipient_uri.as_deref(),
            Some("sip:+491715550001@sms.example")
        );
    }

    fn from_alice(display: bool, cpim: bool, format: BodyFormat) -> SmsToIm {
        SmsToIm {
            envelope: Some(ImEnvelope {
                message_id: "34jk324j".into(),
                from_address: "sip:alice@sms.example".into(),
                display,
                cpim,
                sent_at: UnixTime(1_777_636_800),
            }),
            to_user: "sip:bob@sms.example".into(),
            from: "alice".into(),
            from_name: None,
            ..sms(format)
        }
    }

    fn enveloped(display: bool, cpim: bool, format: BodyFormat) -> OutRequest {
        let msg = from_alice(display, cpim, format);
        sms_message(&msg, "sms.example", &target(), ids())
    }

    #[test]
    fn an_im_from_another_user_keeps_its_envelope() {
        let r = enveloped(true, true, BodyFormat::Plain);
        assert_eq!(r.from, "<sip:alice@sms.example>");
        assert_eq!(r.content_type.as_deref(), Some("message/cpim"));
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            "From: <sip:alice@sms.example>\r\nTo: <sip:bob@sms.example>\r\n\
             DateTime: 2026-05-01T12:00:00Z\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
             imdn.Message-ID: 34jk324j\r\nimdn.Disposition-Notification: display\r\n\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nHallo 👋"
        );
        // No display asked: the id is kept, no notification is asked of the
        // client (delivery is the bridge's to report).
        let r = enveloped(false, true, BodyFormat::Plain);
        let c = cpim::parse(&r.body).unwrap();
        assert_eq!(c.ns_header(cpim::IMDN_NS, "Message-ID"), Some("34jk324j"));
        assert_eq!(c.ns_header(cpim::IMDN_NS, "Disposition-Notification"), None);
        // Nothing asked and a plain-text user: plain text.
        let r = enveloped(false, false, BodyFormat::Plain);
        assert_eq!(r.content_type.as_deref(), Some("text/plain;charset=UTF-8"));
        let r = enveloped(false, false, BodyFormat::Cpim);
        let c = cpim::parse(&r.body).unwrap();
        assert_eq!(c.ns_header(cpim::IMDN_NS, "Message-ID"), Some("34jk324j"));
    }

    #[test]
    fn an_imdn_about_an_im_to_a_user_comes_from_them() {
        let n = DeliveryNotice {
            displayed: true,
            recipient_user: Some("bob".into()),
            im_message_id: "34jk324j".into(),
            recipient: "sip:bob@sms.example".into(),
            ..sms_notice()
        };
        let r = imdn_message(&n, "sms.example", &target(), ids(), "n-1");
        assert_eq!(r.from, "<sip:bob@sms.example>");
        let c = cpim::parse(&r.body).unwrap();
        assert_eq!(c.header("From"), Some("<sip:bob@sms.example>"));
        assert_eq!(
            std::str::from_utf8(&c.body).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>34jk324j</message-id>\
             <datetime>2026-05-01T12:00:00Z</datetime>\
             <recipient-uri>sip:bob@sms.example</recipient-uri>\
             <display-notification><status><displayed/></status></display-notification></imdn>"
        );
    }

    fn foreign(notify: crate::bridge::api::NotifyOn) -> ForeignIm {
        ForeignIm {
            from: "wv:harry@example.com".into(),
            display_name: Some("Harry".into()),
            to: "sip:jane@otherdomain.test".into(),
            text: "Hi Jane ✓".into(),
            im_message_id: Some("m-9".into()),
            notify,
        }
    }

    fn static_route() -> Route {
        Route {
            kind: super::super::route::HopKind::Static,
            next_hop: Some("sip:127.0.0.2:5060".into()),
            server_login: None,
            proxy_login: None,
        }
    }

    #[test]
    fn local_users_get_a_sip_identity_of_our_domain() {
        assert_eq!(
            local_sip_uri("wv:harry@example.com", "sms.example"),
            "sip:harry@sms.example"
        );
        assert_eq!(
            local_sip_uri("WV:harry", "sms.example"),
            "sip:harry@sms.example"
        );
        assert_eq!(local_sip_uri("wv:h arry@x", "d"), "sip:h%20arry@d");
        assert_eq!(
            local_sip_uri("sip:alice@sms.example", "d"),
            "sip:alice@sms.example"
        );
        assert_eq!(local_sip_uri("harry", "d"), "sip:harry@d");
    }

    #[test]
    fn a_foreign_im_as_plain_text_or_cpim_with_imdn() {
        use crate::bridge::api::NotifyOn;
        let from = local_sip_uri("wv:harry@example.com", "sms.example");
        let r = foreign_message(
            &foreign(NotifyOn::default()),
            &from,
            &static_route(),
            ids(),
            "m-9",
            "2026-05-01T12:00:00Z",
        );
        assert_eq!(
            (r.method, r.request_uri.as_str(), r.next_hop.as_deref()),
            (
                "MESSAGE",
                "sip:jane@otherdomain.test",
                Some("sip:127.0.0.2:5060")
            )
        );
        assert_eq!(r.from, "\"Harry\" <sip:harry@sms.example>");
        assert_eq!(r.to, "<sip:jane@otherdomain.test>");
        assert_eq!(r.content_type.as_deref(), Some("text/plain;charset=UTF-8"));
        assert_eq!(r.body, "Hi Jane ✓".as_bytes());
        let asked = NotifyOn {
            displayed: false,
            delivered: true,
            failed: true,
        };
        let r = foreign_message(
            &foreign(asked),
            &from,
            &static_route(),
            ids(),
            "m-9",
            "2026-05-01T12:00:00Z",
        );
        assert_eq!(r.content_type.as_deref(), Some("message/cpim"));
        assert_eq!(
            String::from_utf8(r.body.clone()).unwrap(),
            "From: \"Harry\" <sip:harry@sms.example>\r\n\
             To: <sip:jane@otherdomain.test>\r\n\
             NS: imdn <urn:ietf:params:imdn>\r\n\
             imdn.Message-ID: m-9\r\n\
             DateTime: 2026-05-01T12:00:00Z\r\n\
             imdn.Disposition-Notification: positive-delivery, negative-delivery\r\n\
             \r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             \r\n\
             Hi Jane ✓"
        );
        let c = cpim::parse(&r.body).unwrap();
        assert_eq!(c.imdn_request(), (Some("m-9".into()), asked));
    }

    #[test]
    fn alphanumeric_senders_and_results() {
        assert_eq!(subscriber_uri("My Bank", "d"), "sip:My%20Bank@d");
        assert_eq!(classify(202), DeliveryResult::Delivered);
        assert!(matches!(classify(480), DeliveryResult::Retry(_)));
        assert!(matches!(classify(408), DeliveryResult::Retry(_)));
        assert!(matches!(classify(404), DeliveryResult::Failed(_)));
        assert!(matches!(classify(603), DeliveryResult::Failed(_)));
        let f = DeliveryResult::Failed("SIP 404".into());
        let r = DeliveryResult::Retry("SIP 480".into());
        assert_eq!(
            combine(&[f.clone(), DeliveryResult::Delivered]),
            DeliveryResult::Delivered
        );
        assert_eq!(combine(&[f.clone(), r.clone()]), r);
        assert_eq!(combine(std::slice::from_ref(&f)), f);
        assert!(matches!(combine(&[]), DeliveryResult::Retry(_)));
    }
}
