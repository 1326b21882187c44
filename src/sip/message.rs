//! MESSAGE (RFC 3428) in: who it is for, what it says, and the answer each
//! [`Refusal`] gets. Pure; `uas.rs` authenticates and calls the bridge.

use super::body::{self, BodyError, ImContent};
use super::imdn::Imdn;
use super::wire::{Reply, Request, Uri};
use crate::bridge::api::{Disposition, FrontEnd, ImToSms, Recipient, Refusal, Sender};
use crate::domains::{Classified, Domains};
use crate::store::UnixTime;

/// What to do with a MESSAGE once its sender is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mapped {
    /// Hand it to the bridge.
    Submit(ImToSms),
    /// A client's IMDN about an IM its user received from another user:
    /// pass it to the bridge (`BridgeApi::disposition`).
    Disposition(Sender, Recipient, Disposition),
    /// Answer at once (200 for isComposing, or an error).
    Reply(Reply),
}

/// Whom a Request-URI names, by its host ([`Domains`]): at one of our
/// domains or listen addresses (a softphone that knows the bridge by IP
/// address must work too), `sip:+E164@…` (visual separators allowed) and
/// `sip:<digits>@…` are subscribers and `sip:<alias>@…` anything else;
/// `tel:+E164` is a subscriber; at any other host, a user of another domain
/// whatever the user part.
pub(crate) fn recipient(req: &Request, domains: &Domains) -> Result<Recipient, String> {
    let uri = req.uri_text();
    let u = req
        .uri()
        .ok_or_else(|| format!("{uri} is not a sip: or tel: URI"))?;
    uri_recipient(&u, domains)
}

/// [`recipient`] of a URI already read.
fn uri_recipient(u: &Uri, domains: &Domains) -> Result<Recipient, String> {
    match domains.classify_parts(&u.scheme, u.user.as_deref(), &u.host) {
        Ok(Classified::Local(alias)) => Ok(Recipient::Alias(alias)),
        Ok(Classified::Subscriber(number)) => Ok(Recipient::Number(number)),
        Ok(Classified::Foreign { uri, .. }) => Ok(Recipient::Foreign(uri)),
        Err(e) => Err(e.to_string()),
    }
}

/// Maps a MESSAGE from an identified sender.
pub(crate) fn map_message(req: &Request, sender: Sender, domains: &Domains) -> Mapped {
    let content = match body::read_im(
        req.header("Content-Type"),
        req.header("Content-Encoding"),
        req.body(),
    ) {
        Ok(c) => c,
        Err(BodyError::Unsupported(what)) => {
            return Mapped::Reply(
                Reply::new(415)
                    .with("Accept", body::ACCEPT)
                    .warning(&format!("unsupported content: {what}")),
            );
        }
        Err(BodyError::Invalid(why)) => return Mapped::Reply(Reply::new(400).warning(&why)),
    };
    let (text, im_message_id, notify) = match content {
        ImContent::Text {
            text,
            im_message_id,
            notify,
        } => (text, im_message_id, notify),
        ImContent::Composing => return Mapped::Reply(Reply::new(200)),
        ImContent::Notification(n) => return map_disposition(req, sender, &n, domains),
    };
    let recipient = match recipient(req, domains) {
        Ok(r) => r,
        Err(why) => return Mapped::Reply(Reply::new(404).warning(&why)),
    };
    Mapped::Submit(ImToSms {
        sender,
        front_end: FrontEnd::Sip,
        recipient,
        text,
        im_message_id,
        notify,
        anonymous: body::privacy_requested(&req.header_list("Privacy")),
    })
}

/// An IMDN from a client: for the IM's sender (the Request-URI), about the
/// IM `message-id` its user received. A status the bridge has no use for
/// (`processed`, `stored`) is answered 200 and dropped; a time that does not
/// read is 400.
fn map_disposition(req: &Request, sender: Sender, n: &Imdn, domains: &Domains) -> Mapped {
    let Some(status) = n.disposition() else {
        tracing::debug!(message_id = %n.message_id, status = %n.status, "IMDN from a client; nothing to pass on");
        return Mapped::Reply(Reply::new(200));
    };
    let at = match UnixTime::parse(&n.datetime) {
        Ok(t) => t,
        Err(why) => return Mapped::Reply(Reply::new(400).warning(&why)),
    };
    let to = match recipient(req, domains) {
        Ok(r) => r,
        Err(why) => return Mapped::Reply(Reply::new(404).warning(&why)),
    };
    Mapped::Disposition(
        sender,
        to,
        Disposition {
            message_id: n.message_id.clone(),
            status,
            at,
        },
    )
}

/// The SIP answer to each refusal: the one table. Refusals about "now" get 503
/// with Retry-After; the refusal's text goes into a Warning header.
pub(crate) fn refusal_reply(r: &Refusal) -> Reply {
    let code = match r {
        Refusal::UnknownUser(_)
        | Refusal::SmsNotAllowed(_)
        | Refusal::Blocked(_)
        | Refusal::BlockedByRecipient(_)
        | Refusal::OptedOut(_)
        | Refusal::NotInContacts(_)
        | Refusal::DailyCap(_)
        | Refusal::BadCredentials
        | Refusal::NoImpsAccount(_)
        | Refusal::ForeignNotAllowed(_) => 403,
        Refusal::UnknownRecipient(_) | Refusal::UnknownList(_) | Refusal::NoRoute(_) => 404,
        Refusal::TooLong { .. } => 413,
        Refusal::AnonymityForbidden => 433,
        Refusal::RateLimited { .. }
        | Refusal::QueueFull { .. }
        | Refusal::NoModem { .. }
        | Refusal::StoreBusy { .. }
        | Refusal::Busy { .. }
        | Refusal::Internal { .. } => 503,
        Refusal::EmptyMessage | Refusal::Invalid(_) => 400,
    };
    let reply = Reply::new(code).warning(&r.to_string());
    match r.retry_after() {
        Some(after) => reply.with("Retry-After", after.as_secs().max(1).to_string()),
        None => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::api::{NotifyOn, Verified};
    use std::time::Duration;

    /// sms.example, and the bridge's address 1.2.3.4.
    fn ours() -> Domains {
        Domains::new(["sms.example"], [std::net::IpAddr::from([1, 2, 3, 4])])
    }

    #[test]
    fn recipients() {
        // Through the URI adapter: a Request-URI cannot hold the spaces of
        // the `tel:` case below.
        let recipient = |uri: &str| {
            super::super::wire::parse_uri(uri)
                .ok_or_else(|| format!("{uri} is not a URI"))
                .and_then(|u| uri_recipient(&u, &ours()))
        };
        let n = |s: &str| Ok(Recipient::Number(s.into()));
        let foreign = |s: &str| Ok(Recipient::Foreign(s.into()));
        assert_eq!(
            recipient("sip:+491715550001@sms.example"),
            n("+491715550001")
        );
        assert_eq!(
            recipient("sip:+49-171-555.0001@1.2.3.4;user=phone"),
            n("+491715550001")
        );
        assert_eq!(recipient("tel:+491715550001"), n("+491715550001"));
        assert_eq!(
            recipient("tel:+49 (171) 5550001;phone-context=x"),
            n("+491715550001")
        );
        assert_eq!(recipient("sip:01715550001@SMS.example"), n("01715550001"));
        assert_eq!(recipient("sip:%2B4917@sms.example"), n("+4917"));
        assert_eq!(
            recipient("sip:bob@sms.example:5060"),
            Ok(Recipient::Alias("bob".into()))
        );
        assert_eq!(
            recipient("sip:bob@1.2.3.4"),
            Ok(Recipient::Alias("bob".into()))
        );
        // The same user parts elsewhere are users of other domains.
        assert_eq!(
            recipient("sip:+15550200@otherdomain.net"),
            foreign("sip:+15550200@otherdomain.net")
        );
        assert_eq!(recipient("sip:bob@x"), foreign("sip:bob@x"));
        assert_eq!(recipient("sip:bob@1.2.3.5"), foreign("sip:bob@1.2.3.5"));
        assert!(recipient("sip:+bob@sms.example").is_err());
        assert!(recipient("tel:bob").is_err());
        assert!(recipient("sip:sms.example").is_err());
        assert!(recipient("http://x").is_err());
    }

    #[test]
    fn refusal_codes() {
        let code = |r: Refusal| refusal_reply(&r).code;
        assert_eq!(code(Refusal::UnknownUser("a".into())), 403);
        assert_eq!(code(Refusal::Blocked("+4917".into())), 403);
        assert_eq!(code(Refusal::OptedOut("+4917".into())), 403);
        assert_eq!(code(Refusal::DailyCap(200)), 403);
        assert_eq!(code(Refusal::EmptyMessage), 400);
        assert_eq!(code(Refusal::UnknownRecipient("x".into())), 404);
        assert_eq!(code(Refusal::TooLong { parts: 9, max: 6 }), 413);
        assert_eq!(code(Refusal::AnonymityForbidden), 433);
        assert_eq!(code(Refusal::Invalid("x".into())), 400);
        let r = refusal_reply(&Refusal::NoModem {
            retry_after: Duration::from_secs(30),
        });
        assert_eq!(r.code, 503);
        assert_eq!(r.header("Retry-After"), Some("30"));
        assert_eq!(
            r.header("Warning"),
            Some("399 smsbridge \"no modem is registered\"")
        );
        let r = refusal_reply(&Refusal::RateLimited {
            limit: 10,
            retry_after: Duration::from_secs(60),
        });
        assert_eq!((r.code, r.header("Retry-After")), (503, Some("60")));
        let r = refusal_reply(&Refusal::QueueFull {
            queued: 1000,
            retry_after: Duration::from_secs(120),
        });
        assert_eq!((r.code, r.header("Retry-After")), (503, Some("120")));
        assert_eq!(
            refusal_reply(&Refusal::DailyCap(5)).header("Retry-After"),
            None
        );
    }

    /// A MESSAGE as a peer would send it, parsed by rsipstack.
    fn req(uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        let mut text = format!(
            "MESSAGE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
             From: <sip:alice@sms.example>;tag=a1\r\nTo: <{uri}>\r\nCall-ID: c1\r\n\
             CSeq: 1 MESSAGE\r\nContent-Length: {}\r\n",
            body.len()
        )
        .into_bytes();
        for (n, v) in headers {
            text.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        text.extend_from_slice(b"\r\n");
        text.extend_from_slice(body);
        Request::parse(
            &text,
            "127.0.0.1:5070".parse().unwrap(),
            super::super::wire::Transport::Udp,
        )
        .unwrap()
    }

    fn alice() -> Sender {
        Sender {
            address: "sip:alice@sms.example".into(),
            display_name: Some("Alice".into()),
            verified: Verified::Authenticated,
        }
    }

    #[test]
    fn maps_text_cpim_privacy_and_errors() {
        let m = map_message(
            &req(
                "sip:+4917@sms.example",
                &[
                    ("Content-Type", "text/plain;charset=UTF-8"),
                    ("Privacy", "id"),
                ],
                "hi ✓".as_bytes(),
            ),
            alice(),
            &ours(),
        );
        assert_eq!(
            m,
            Mapped::Submit(ImToSms {
                sender: alice(),
                front_end: FrontEnd::Sip,
                recipient: Recipient::Number("+4917".into()),
                text: "hi ✓".into(),
                im_message_id: None,
                notify: NotifyOn::default(),
                anonymous: true,
            })
        );
        let reply = |m: Mapped| match m {
            Mapped::Reply(r) => r,
            other => panic!("not answered at once: {other:?}"),
        };
        let r = reply(map_message(
            &req("sip:bob@x", &[("Content-Type", "image/jpeg")], b"\xff\xd8"),
            alice(),
            &ours(),
        ));
        assert_eq!(
            (r.code, r.header("Accept")),
            (415, Some("text/plain, message/cpim"))
        );
        let r = reply(map_message(
            &req("sip:x", &[("Content-Type", "text/plain")], b"hi"),
            alice(),
            &ours(),
        ));
        assert_eq!(r.code, 404);
        let r = reply(map_message(
            &req(
                "sip:bob@x",
                &[("Content-Type", "application/im-iscomposing+xml")],
                b"<isComposing/>",
            ),
            alice(),
            &ours(),
        ));
        assert_eq!(r.code, 200);
        let r = reply(map_message(&req("sip:bob@x", &[], b""), alice(), &ours()));
        assert_eq!(r.code, 400);
    }

    fn imdn_body(status: &str, datetime: &str) -> Vec<u8> {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>34jk324j</message-id>\
             <datetime>{datetime}</datetime>\
             <display-notification><status><{status}/></status></display-notification></imdn>"
        );
        format!(
            "From: <sip:alice@sms.example>\r\nTo: <sip:bob@sms.example>\r\n\
             NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: n-1\r\n\
             DateTime: {datetime}\r\n\r\nContent-Type: message/imdn+xml\r\n\
             Content-Disposition: notification\r\n\r\n{xml}"
        )
        .into_bytes()
    }

    #[test]
    fn a_clients_imdn_goes_to_the_bridge_for_the_ims_sender() {
        let cpim = [("Content-Type", "message/cpim")];
        let m = map_message(
            &req(
                "sip:bob@sms.example",
                &cpim,
                &imdn_body("displayed", "2026-05-01T12:00:00Z"),
            ),
            alice(),
            &ours(),
        );
        assert_eq!(
            m,
            Mapped::Disposition(
                alice(),
                Recipient::Alias("bob".into()),
                Disposition {
                    message_id: "34jk324j".into(),
                    status: crate::bridge::api::DispositionStatus::Displayed,
                    at: UnixTime(1_777_636_800),
                }
            )
        );
        let code = |body: Vec<u8>| match map_message(
            &req("sip:bob@sms.example", &cpim, &body),
            alice(),
            &ours(),
        ) {
            Mapped::Reply(r) => r.code,
            other => panic!("{other:?}"),
        };
        // Nothing the bridge passes on; a time that does not read.
        assert_eq!(code(imdn_body("processed", "2026-05-01T12:00:00Z")), 200);
        assert_eq!(code(imdn_body("displayed", "yesterday")), 400);
    }
}
