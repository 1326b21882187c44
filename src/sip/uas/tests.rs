//! The request handler without sockets: literal requests, a fake bridge.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::bridge::api::{
    Accepted, BoxFuture, ImToSms, ImUserPresence, MessageId, Recipient, SipCredentials,
    SubscriberPresence, WatcherInfo,
};
use crate::sip::digest::{md5_hex, request_digest};

#[derive(Default)]
struct Fake {
    submitted: Mutex<Vec<ImToSms>>,
    online: Mutex<Vec<String>>,
    refuse: Mutex<Option<Refusal>>,
    refuse_presence: Mutex<Option<Refusal>>,
    /// The user of the bridge an alias names (else a subscriber).
    user: Mutex<Option<ImUserPresence>>,
    /// What `authorise_watch` decides (`None`: allow).
    decision: Mutex<Option<WatchDecision>>,
    /// (presentity, watcher) of every `authorise_watch`.
    authorised: Mutex<Vec<(String, String)>>,
    /// What `watchers` answers.
    watchers: Mutex<Vec<WatcherInfo>>,
    /// Why subscribers cannot be reached (opted out), if they cannot.
    unavailable: Mutex<Option<String>>,
}

impl BridgeApi for Fake {
    fn submit(&self, req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>> {
        self.submitted.lock().unwrap().push(req);
        let r = self.refuse.lock().unwrap().clone();
        Box::pin(async move {
            match r {
                Some(r) => Err(r),
                None => Ok(Accepted {
                    delivered: false,
                    message: MessageId(1),
                    parts: 1,
                }),
            }
        })
    }
    fn sip_credentials(&self, address: String) -> BoxFuture<Option<SipCredentials>> {
        Box::pin(async move {
            (address == "sip:alice@sms.example").then(|| SipCredentials {
                realm: "smsbridge".into(),
                ha1: md5_hex("alice:smsbridge:secret"),
            })
        })
    }
    fn presence(&self, w: String, t: Recipient) -> BoxFuture<Result<SubscriberPresence, Refusal>> {
        let r = self.refuse_presence.lock().unwrap().clone();
        let user = self.user.lock().unwrap().clone();
        // A user of the bridge: their policy decides, as the bridge's
        // presence() does (a blocked watcher is refused).
        let decision = match &user {
            Some(u) => {
                let presentity = format!("wv:{}@sms.example", u.user_part);
                self.authorised.lock().unwrap().push((presentity, w));
                self.decision
                    .lock()
                    .unwrap()
                    .unwrap_or(WatchDecision::Allow)
            }
            None => WatchDecision::Allow,
        };
        let unavailable = self.unavailable.lock().unwrap().clone();
        Box::pin(async move {
            match (r, t) {
                (Some(r), _) => Err(r),
                (None, Recipient::Alias(a)) if user.is_some() => match decision {
                    WatchDecision::Block => Err(Refusal::BlockedByRecipient(a)),
                    decision => Ok(SubscriberPresence {
                        msisdn: String::new(),
                        name: None,
                        im_user: user,
                        decision,
                        unavailable: None,
                    }),
                },
                (None, Recipient::Number(n)) => Ok(SubscriberPresence {
                    msisdn: n,
                    name: None,
                    im_user: None,
                    decision: crate::bridge::api::WatchDecision::Allow,
                    unavailable,
                }),
                (None, Recipient::Alias(_) | Recipient::Foreign(_)) => Ok(SubscriberPresence {
                    msisdn: "+491715550001".into(),
                    name: Some("Bob".into()),
                    im_user: None,
                    decision: crate::bridge::api::WatchDecision::Allow,
                    unavailable: None,
                }),
            }
        })
    }
    fn user_online(&self, address: String) {
        self.online.lock().unwrap().push(address);
    }
    fn authorise_watch(
        &self,
        presentity: String,
        watcher: String,
    ) -> BoxFuture<Result<WatchDecision, Refusal>> {
        self.authorised.lock().unwrap().push((presentity, watcher));
        let d = self
            .decision
            .lock()
            .unwrap()
            .unwrap_or(WatchDecision::Allow);
        Box::pin(async move { Ok(d) })
    }
    fn watchers(&self, presentity: String) -> BoxFuture<Result<Vec<WatcherInfo>, Refusal>> {
        let w = self.watchers.lock().unwrap().clone();
        Box::pin(async move {
            if presentity == "sip:alice@sms.example" {
                Ok(w)
            } else {
                Err(Refusal::UnknownUser(presentity))
            }
        })
    }
}

fn uas() -> (Uas, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let cfg = UasConfig {
        realm: "smsbridge".into(),
        domain: "sms.example".into(),
        domains: Arc::new(
            crate::domains::Domains::new(["sms.example"], ["127.0.0.1".parse().unwrap()])
                .with_peer("otherdomain.test", ["127.0.0.2".parse().unwrap()])
                .with_trusted(["10.9.9.9".parse().unwrap()]),
        ),
        trusted: vec!["10.9.9.9".parse().unwrap()],
        contact_udp: "sip:smsbridge@127.0.0.1:5060".into(),
        contact_tcp: "sip:smsbridge@127.0.0.1:5060;transport=tcp".into(),
        require_auth_int: false,
    };
    (
        Uas::new(cfg, fake.clone(), "k".into(), || "tag1".into()),
        fake,
    )
}

const NOW: u64 = 1_000_000;

/// A request as a peer would send it, parsed by rsipstack: `headers`
/// replace the defaults of the same name.
fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut h: Vec<(String, String)> = vec![
        (
            "Via".into(),
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1".into(),
        ),
        (
            "From".into(),
            "\"Alice\" <sip:alice@127.0.0.1>;tag=a1".into(),
        ),
        ("To".into(), format!("<{uri}>")),
        ("Call-ID".into(), "call-1".into()),
        ("CSeq".into(), format!("1 {method}")),
        ("Content-Length".into(), body.len().to_string()),
    ];
    for (n, v) in headers {
        h.retain(|(k, _)| !k.eq_ignore_ascii_case(n));
        h.push(((*n).into(), (*v).into()));
    }
    let mut text = format!("{method} {uri} SIP/2.0\r\n");
    for (n, v) in &h {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    Request::parse(
        text.as_bytes(),
        "127.0.0.1:5070".parse().unwrap(),
        Transport::Udp,
    )
    .unwrap()
}

/// Answers the challenge in `reply` as alice with `password`.
fn authorize(req: &mut Request, reply: &Reply, password: &str) {
    let ch = reply.header("WWW-Authenticate").expect("a challenge");
    let nonce = ch
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let ha1 = md5_hex(&format!("alice:smsbridge:{password}"));
    let resp = request_digest(
        &ha1,
        nonce,
        &req.method().to_string(),
        &req.uri_text(),
        Some(("00000001", "c0ffee")),
    );
    req.push_header(
        "Authorization",
        format!(
            "Digest username=\"alice\", realm=\"smsbridge\", nonce=\"{nonce}\", uri=\"{}\", \
             response=\"{resp}\", qop=auth, nc=00000001, cnonce=\"c0ffee\", algorithm=MD5",
            req.uri_text()
        ),
    );
}

async fn authed(u: &Uas, mut req: Request) -> Handled {
    let first = u.handle(&req, NOW).await;
    assert_eq!(first.reply.code, 401, "{first:?}");
    authorize(&mut req, &first.reply, "secret");
    u.handle(&req, NOW).await
}

#[tokio::test]
async fn options_and_methods_we_do_not_serve() {
    let (u, _) = uas();
    let r = u
        .handle(&request("OPTIONS", "sip:sms.example", &[], ""), NOW)
        .await
        .reply;
    assert_eq!(r.code, 200);
    assert_eq!(r.header("Allow"), Some(ALLOW));
    assert_eq!(r.header("Accept"), Some("text/plain, message/cpim"));
    let r = u
        .handle(&request("INVITE", "sip:bob@x", &[], ""), NOW)
        .await
        .reply;
    assert_eq!((r.code, r.header("Allow")), (405, Some(ALLOW)));
    let r = u
        .handle(
            &request("OPTIONS", "sip:x", &[("Require", "100rel")], ""),
            NOW,
        )
        .await
        .reply;
    assert_eq!((r.code, r.header("Unsupported")), (420, Some("100rel")));
    // The method is looked at before Require and the body (RFC 3261 §8.2;
    // RFC 4475 §3.3.6, §3.3.15): an INVITE is 405 whatever it carries.
    let r = u
        .handle(
            &request(
                "INVITE",
                "sip:bob@x",
                &[
                    ("Require", "100rel"),
                    ("Content-Type", "application/unknownformat"),
                ],
                "x",
            ),
            NOW,
        )
        .await
        .reply;
    assert_eq!((r.code, r.header("Allow")), (405, Some(ALLOW)));
    u.set_draining(true);
    let r = u
        .handle(&request("OPTIONS", "sip:x", &[], ""), NOW)
        .await
        .reply;
    assert_eq!((r.code, r.header("Retry-After")), (503, Some("5")));
}

#[tokio::test]
async fn message_with_digest_is_submitted_and_accepted() {
    let (u, fake) = uas();
    let req = request(
        "MESSAGE",
        "sip:+491715550001@sms.example",
        &[
            ("Content-Type", "text/plain;charset=UTF-8"),
            ("Privacy", "id"),
        ],
        "Hallo ✓",
    );
    let first = u.handle(&req, NOW).await.reply;
    assert_eq!(first.code, 401);
    let ch = first.header("WWW-Authenticate").unwrap();
    assert!(
        ch.starts_with("Digest realm=\"smsbridge\", nonce=\""),
        "{ch}"
    );
    assert!(fake.submitted.lock().unwrap().is_empty());
    let r = authed(&u, req).await.reply;
    assert_eq!(r.code, 202);
    let got = fake.submitted.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![ImToSms {
            sender: Sender {
                address: "sip:alice@sms.example".into(),
                display_name: Some("Alice".into()),
                verified: Verified::Authenticated,
            },
            front_end: crate::bridge::api::FrontEnd::Sip,
            recipient: Recipient::Number("+491715550001".into()),
            text: "Hallo ✓".into(),
            im_message_id: None,
            notify: Default::default(),
            anonymous: true,
        }]
    );
}

#[tokio::test]
async fn wrong_password_stale_nonce_and_unknown_user() {
    let (u, _) = uas();
    let mut req = request("MESSAGE", "sip:bob@sms.example", &[], "x");
    let first = u.handle(&req, NOW).await.reply;
    authorize(&mut req, &first, "guess");
    assert_eq!(u.handle(&req, NOW).await.reply.code, 401);
    let mut req = request("MESSAGE", "sip:bob@sms.example", &[], "x");
    authorize(&mut req, &first, "secret");
    let stale = u.handle(&req, NOW + 301).await.reply;
    assert_eq!(stale.code, 401);
    assert!(
        stale
            .header("WWW-Authenticate")
            .unwrap()
            .ends_with("stale=true")
    );
    let mut req = request(
        "MESSAGE",
        "sip:bob@sms.example",
        &[("From", "<sip:mallory@sms.example>;tag=m")],
        "x",
    );
    let first = u.handle(&req, NOW).await.reply;
    authorize(&mut req, &first, "secret");
    // The digest username (alice) is not the From user (mallory).
    assert_eq!(u.handle(&req, NOW).await.reply.code, 403);
}

#[tokio::test]
async fn refusals_and_content_errors() {
    let (u, fake) = uas();
    *fake.refuse.lock().unwrap() = Some(Refusal::TooLong { parts: 9, max: 6 });
    let req = request("MESSAGE", "sip:+4917@sms.example", &[], "long");
    assert_eq!(authed(&u, req).await.reply.code, 413);
    *fake.refuse.lock().unwrap() = Some(Refusal::NoModem {
        retry_after: Duration::from_secs(120),
    });
    let r = authed(&u, request("MESSAGE", "sip:+4917@sms.example", &[], "x"))
        .await
        .reply;
    assert_eq!((r.code, r.header("Retry-After")), (503, Some("120")));
    let req = request(
        "MESSAGE",
        "sip:bob@x",
        &[("Content-Type", "image/gif")],
        "GIF89a",
    );
    let r = authed(&u, req).await.reply;
    assert_eq!(
        (r.code, r.header("Accept")),
        (415, Some("text/plain, message/cpim"))
    );
}

#[tokio::test]
async fn trusted_peers_assert_the_identity() {
    let (u, fake) = uas();
    let mut req = request(
        "MESSAGE",
        "tel:+491715550001",
        &[(
            "P-Asserted-Identity",
            "\"Carol\" <sip:carol@operator.example>",
        )],
        "hi",
    );
    req.source = "10.9.9.9:5060".parse().unwrap();
    assert_eq!(u.handle(&req, NOW).await.reply.code, 202);
    let s = fake.submitted.lock().unwrap()[0].sender.clone();
    // Another domain's user: the bridge's policy for them applies.
    assert_eq!(
        s,
        Sender {
            address: "sip:carol@operator.example".into(),
            display_name: Some("Carol".into()),
            verified: Verified::FederatedPeer,
        }
    );
    let mut req = request(
        "MESSAGE",
        "tel:+491715550001",
        &[("P-Asserted-Identity", "\"Carol\" <sip:carol@SMS.example>")],
        "hi",
    );
    req.source = "10.9.9.9:5060".parse().unwrap();
    assert_eq!(u.handle(&req, NOW).await.reply.code, 202);
    assert_eq!(
        fake.submitted.lock().unwrap()[1].sender,
        Sender {
            address: "sip:carol@sms.example".into(),
            display_name: Some("Carol".into()),
            verified: Verified::TrustedPeer,
        }
    );
}

/// A request from a user of another domain is taken only from that
/// domain's configured server, as theirs; from anywhere else it is refused
/// before any challenge, so it cannot pass as a user of ours either.
#[tokio::test]
async fn foreign_identities_only_from_their_domains_servers() {
    let (u, fake) = uas();
    let from = [("From", "\"Jane\" <sip:jane@OtherDomain.test>;tag=j1")];
    let mut req = request("MESSAGE", "sip:alice@sms.example", &from, "hi");
    req.source = "127.0.0.2:5060".parse().unwrap();
    assert_eq!(u.handle(&req, NOW).await.reply.code, 202);
    assert_eq!(
        fake.submitted.lock().unwrap()[0].sender,
        Sender {
            address: "sip:jane@otherdomain.test".into(),
            display_name: Some("Jane".into()),
            verified: Verified::FederatedPeer,
        }
    );
    for (source, from) in [
        ("127.0.0.3:5060", "<sip:jane@otherdomain.test>;tag=j1"),
        ("127.0.0.2:5060", "<sip:jane@thirddomain.test>;tag=j1"),
        ("127.0.0.2:5060", "<sip:alice@otherdomain.net>;tag=j1"),
    ] {
        let mut req = request("MESSAGE", "sip:alice@sms.example", &[("From", from)], "hi");
        req.source = source.parse().unwrap();
        let r = u.handle(&req, NOW).await.reply;
        assert_eq!(
            (r.code, r.header("WWW-Authenticate")),
            (403, None),
            "{from}"
        );
        assert!(
            r.header("Warning")
                .is_some_and(|w| w.contains("accepted only from its configured servers")),
            "{r:?}"
        );
    }
    assert_eq!(fake.submitted.lock().unwrap().len(), 1);
    // Nor may another domain's server register one of its users here.
    let mut reg = request(
        "REGISTER",
        "sip:sms.example",
        &[
            ("From", "<sip:jane@otherdomain.test>;tag=j1"),
            ("To", "<sip:jane@otherdomain.test>"),
            ("Contact", "<sip:jane@127.0.0.2:5070>"),
        ],
        "",
    );
    reg.source = "127.0.0.2:5060".parse().unwrap();
    assert_eq!(u.handle(&reg, NOW).await.reply.code, 403);
}

/// rsipstack keeps `%2B` in the user part (and prints it as `%252B`): the
/// adapter decodes it, so the number reaches the bridge as a number.
#[tokio::test]
async fn an_escaped_plus_in_the_request_uri_is_a_number() {
    let (u, fake) = uas();
    let mut req = request("MESSAGE", "sip:%2B491715550001@sms.example", &[], "hi");
    req.source = "10.9.9.9:5060".parse().unwrap();
    assert_eq!(u.handle(&req, NOW).await.reply.code, 202);
    assert_eq!(
        fake.submitted.lock().unwrap()[0].recipient,
        Recipient::Number("+491715550001".into())
    );
}

/// RFC 4475 §3.3.4: the To of a REGISTER is an address of record, so a
/// SIP or SIPS URI; anything else is 400 before any challenge.
#[tokio::test]
async fn register_to_something_else_than_a_sip_uri_is_400() {
    let (u, _) = uas();
    for to in [
        "isbn:2983792873",
        "<tel:+491715550001>",
        "<http://example.com>",
    ] {
        let r = u
            .handle(
                &request("REGISTER", "sip:sms.example", &[("To", to)], ""),
                NOW,
            )
            .await
            .reply;
        assert_eq!(r.code, 400, "{to}");
        assert_eq!(
            r.header("Warning"),
            Some("399 smsbridge \"the To of a REGISTER must be a sip: or sips: URI\""),
            "{to}"
        );
    }
}

#[tokio::test]
async fn register_lists_contacts_and_reports_the_user_online() {
    let (u, fake) = uas();
    let req = request(
        "REGISTER",
        "sip:sms.example",
        &[
            ("To", "<sip:alice@sms.example>"),
            (
                "Contact",
                "<sip:alice@127.0.0.1:5070>;expires=120, <sip:alice@127.0.0.1:5071>",
            ),
        ],
        "",
    );
    let mut req = req;
    let first = u.handle(&req, NOW).await.reply;
    authorize(&mut req, &first, "secret");
    let h = u.handle(&req, NOW).await;
    assert_eq!(h.reply.code, 200);
    let contacts: Vec<_> = h
        .reply
        .headers
        .iter()
        .filter(|(n, _)| n == "Contact")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        contacts,
        [
            "<sip:alice@127.0.0.1:5070>;expires=120",
            "<sip:alice@127.0.0.1:5071>;expires=3600"
        ]
    );
    let alice = || "sip:alice@sms.example".to_owned();
    assert_eq!(
        h.followups,
        vec![
            Followup::Presence(alice(), Presence::online()),
            Followup::UserOnline(alice())
        ]
    );
    assert_eq!(
        lock(&u.registrar).snapshot(NOW + 200),
        vec![(
            "sip:alice@sms.example".to_owned(),
            vec!["sip:alice@127.0.0.1:5071".to_owned()]
        )]
    );
    assert!(
        fake.online.lock().unwrap().is_empty(),
        "the glue calls user_online"
    );

    // A refresh flushes what waits but is no presence change.
    let refresh = request(
        "REGISTER",
        "sip:sms.example",
        &[
            ("To", "<sip:alice@sms.example>"),
            ("CSeq", "2 REGISTER"),
            ("Contact", "<sip:alice@127.0.0.1:5071>"),
        ],
        "",
    );
    let h = authed(&u, refresh).await;
    assert_eq!(h.reply.code, 200);
    assert_eq!(h.followups, vec![Followup::UserOnline(alice())]);

    // Removing every binding is.
    let remove = request(
        "REGISTER",
        "sip:sms.example",
        &[
            ("To", "<sip:alice@sms.example>"),
            ("CSeq", "3 REGISTER"),
            ("Contact", "*"),
            ("Expires", "0"),
        ],
        "",
    );
    let h = authed(&u, remove).await;
    assert_eq!(h.reply.code, 200);
    assert_eq!(
        h.followups,
        vec![Followup::Presence(alice(), Presence::offline())]
    );

    // And asking for the (now empty) bindings changes nothing.
    let query = request(
        "REGISTER",
        "sip:sms.example",
        &[("To", "<sip:alice@sms.example>"), ("CSeq", "4 REGISTER")],
        "",
    );
    let h = authed(&u, query).await;
    assert_eq!(h.reply.code, 200);
    assert_eq!(h.followups, vec![]);
}

#[tokio::test]
async fn subscribe_refresh_and_unsubscribe() {
    let (u, fake) = uas();
    let headers = [
        ("Event", "presence;id=7"),
        ("Contact", "<sip:alice@127.0.0.1:5070>"),
        ("Expires", "600"),
    ];
    let req = request("SUBSCRIBE", "sip:+491715550001@sms.example", &headers, "");
    let h = authed(&u, req).await;
    assert_eq!(h.reply.code, 200);
    assert_eq!(h.reply.to_tag.as_deref(), Some("tag1"));
    assert_eq!(h.reply.header("Expires"), Some("600"));
    let [Followup::Notify(s)] = &h.followups[..] else {
        panic!("{h:?}");
    };
    assert_eq!(s.msisdn, "+491715550001");
    assert_eq!(s.event_id.as_deref(), Some("7"));
    assert_eq!(s.remote_target, "sip:alice@127.0.0.1:5070");
    assert_eq!(s.state(NOW), "active;expires=600");

    // Refresh in the dialog.
    let mut headers = headers.to_vec();
    headers.push(("To", "<sip:+491715550001@sms.example>;tag=tag1"));
    headers.push(("CSeq", "3 SUBSCRIBE"));
    headers.retain(|(n, _)| *n != "Expires");
    headers.push(("Expires", "300"));
    let req = request("SUBSCRIBE", "sip:+491715550001@sms.example", &headers, "");
    let h = authed(&u, req).await;
    assert_eq!(h.reply.code, 200);
    let [Followup::Notify(s)] = &h.followups[..] else {
        panic!()
    };
    assert_eq!(
        (s.state(NOW), s.local_cseq),
        ("active;expires=300".into(), 2)
    );

    // Unsubscribe.
    headers.retain(|(n, _)| *n != "Expires");
    headers.push(("Expires", "0"));
    let req = request("SUBSCRIBE", "sip:+491715550001@sms.example", &headers, "");
    let h = authed(&u, req.clone()).await;
    let [Followup::Notify(s)] = &h.followups[..] else {
        panic!()
    };
    assert_eq!(s.state(NOW), "terminated;reason=timeout");
    assert_eq!(authed(&u, req).await.reply.code, 481);

    // Other packages, refusals.
    let r = u
        .handle(
            &request("SUBSCRIBE", "sip:+4917@x", &[("Event", "dialog")], ""),
            NOW,
        )
        .await
        .reply;
    assert_eq!(
        (r.code, r.header("Allow-Events")),
        (489, Some("presence, presence.winfo"))
    );
    *fake.refuse_presence.lock().unwrap() = Some(Refusal::NotInContacts("+4917".into()));
    let req = request(
        "SUBSCRIBE",
        "sip:+4917@x",
        &[("Event", "presence"), ("Contact", "<sip:a@b>")],
        "",
    );
    assert_eq!(authed(&u, req).await.reply.code, 403);
}

/// A handler whose tags (and entity tags) differ at every call.
fn publish_uas() -> Uas {
    fn counted() -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        format!("e{}", N.fetch_add(1, Ordering::SeqCst))
    }
    let (u, _) = uas();
    Uas::new(
        u.cfg.clone(),
        Arc::new(Fake::default()),
        "k".into(),
        counted,
    )
}

fn pidf_fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/pidf/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A PUBLISH by alice for `uri` with these headers and body.
fn publish(uri: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut h = vec![("Event", "presence")];
    if !body.is_empty() {
        h.push(("Content-Type", "application/pidf+xml"));
    }
    h.extend_from_slice(headers);
    request("PUBLISH", uri, &h, body)
}

const ALICE: &str = "sip:alice@sms.example";

fn busy_doc() -> String {
    "<?xml version=\"1.0\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
     xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
     xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@sms.example\">\
     <tuple id=\"t\"><status><basic>open</basic></status></tuple>\
     <dm:person id=\"p\"><rpid:activities><rpid:busy/></rpid:activities>\
     <dm:note>In a meeting</dm:note></dm:person></presence>"
        .to_owned()
}

#[tokio::test]
async fn publish_initial_refresh_modify_and_remove() {
    let u = publish_uas();
    // baresip 1.0's first PUBLISH: its document, no entity tag.
    let h = authed(
        &u,
        publish(
            ALICE,
            &[("Expires", "600")],
            &pidf_fixture("baresip-publish-open.xml"),
        ),
    )
    .await;
    assert_eq!(h.reply.code, 200, "{h:?}");
    assert_eq!(h.reply.header("Expires"), Some("600"));
    let tag1 = h.reply.header("SIP-ETag").expect("SIP-ETag").to_owned();
    // Not registered, but published open: watchers hear.
    assert_eq!(
        h.followups,
        vec![Followup::Presence(ALICE.into(), Presence::online())]
    );
    assert_eq!(u.user_presence(ALICE, NOW), Presence::online());

    // A refresh: no body, a new entity tag, nothing new to tell.
    let h = authed(
        &u,
        publish(ALICE, &[("Expires", "600"), ("SIP-If-Match", &tag1)], ""),
    )
    .await;
    assert_eq!(h.reply.code, 200, "{h:?}");
    let tag2 = h.reply.header("SIP-ETag").unwrap().to_owned();
    assert_ne!(tag1, tag2);
    assert!(h.followups.is_empty());
    // The old tag is spent (RFC 3903 §6 step 4): 412.
    let h = authed(&u, publish(ALICE, &[("SIP-If-Match", &tag1)], "")).await;
    assert_eq!(h.reply.code, 412, "{h:?}");

    // A modification: busy, with a note.
    let h = authed(&u, publish(ALICE, &[("SIP-If-Match", &tag2)], &busy_doc())).await;
    assert_eq!(h.reply.code, 200, "{h:?}");
    assert_eq!(h.reply.header("Expires"), Some("3600"));
    let tag3 = h.reply.header("SIP-ETag").unwrap().to_owned();
    let busy = Presence {
        open: true,
        availability: Some(crate::presence::Availability::Discreet),
        activities: vec!["busy".into()],
        note: Some("In a meeting".into()),
        ..Presence::default()
    };
    assert_eq!(
        h.followups,
        vec![Followup::Presence(ALICE.into(), busy.clone())]
    );
    assert_eq!(u.user_presence(ALICE, NOW), busy);

    // Removal: back to the registration (none: offline).
    let h = authed(
        &u,
        publish(ALICE, &[("SIP-If-Match", &tag3), ("Expires", "0")], ""),
    )
    .await;
    assert_eq!(h.reply.code, 200, "{h:?}");
    assert_eq!(
        h.followups,
        vec![Followup::Presence(ALICE.into(), Presence::offline())]
    );
    assert_eq!(u.user_presence(ALICE, NOW), Presence::offline());
}

#[tokio::test]
async fn publish_refusals() {
    let u = publish_uas();
    // Another event package: 489 before anything else.
    let r = u
        .handle(&publish(ALICE, &[("Event", "dialog")], &busy_doc()), NOW)
        .await
        .reply;
    assert_eq!((r.code, r.header("Allow-Events")), (489, Some("presence")));
    // Too short: 423 with Min-Expires.
    let r = u
        .handle(&publish(ALICE, &[("Expires", "10")], &busy_doc()), NOW)
        .await
        .reply;
    assert_eq!((r.code, r.header("Min-Expires")), (423, Some("60")));
    let r = u
        .handle(&publish(ALICE, &[("Expires", "soon")], &busy_doc()), NOW)
        .await
        .reply;
    assert_eq!(r.code, 400);
    // Too large: 413, before any challenge.
    let big = "x".repeat(crate::sip::publish::MAX_BODY + 1);
    let r = u.handle(&publish(ALICE, &[], &big), NOW).await.reply;
    assert_eq!(r.code, 413);
    // Unauthenticated: challenged.
    let r = u.handle(&publish(ALICE, &[], &busy_doc()), NOW).await.reply;
    assert_eq!(r.code, 401);
    // Someone else's presence: 403.
    let h = authed(&u, publish("sip:bob@sms.example", &[], &busy_doc())).await;
    assert_eq!(h.reply.code, 403, "{h:?}");
    // Another body: 415 with Accept.
    let h = authed(
        &u,
        publish(ALICE, &[("Content-Type", "text/plain")], "hello"),
    )
    .await;
    assert_eq!(
        (h.reply.code, h.reply.header("Accept")),
        (415, Some("application/pidf+xml"))
    );
    // PIDF that is not: 400; hostile XML too.
    let h = authed(&u, publish(ALICE, &[], "<presence xmlns=\"urn:x\"/>")).await;
    assert_eq!(h.reply.code, 400, "{h:?}");
    let h = authed(
        &u,
        publish(ALICE, &[], &pidf_fixture("hostile-entities.xml")),
    )
    .await;
    assert_eq!(h.reply.code, 400, "{h:?}");
    // A new publication without a body, or a removal without a tag: 400.
    let h = authed(&u, publish(ALICE, &[], "")).await;
    assert_eq!(h.reply.code, 400, "{h:?}");
    let h = authed(&u, publish(ALICE, &[("Expires", "0")], &busy_doc())).await;
    assert_eq!(h.reply.code, 400, "{h:?}");
    // An entity tag never issued: 412.
    let h = authed(&u, publish(ALICE, &[("SIP-If-Match", "nope")], "")).await;
    assert_eq!(h.reply.code, 412, "{h:?}");
    // The per-user cap: 403 once reached.
    for _ in 0..crate::sip::publish::MAX_PER_USER {
        let h = authed(&u, publish(ALICE, &[], &busy_doc())).await;
        assert_eq!(h.reply.code, 200, "{h:?}");
    }
    let h = authed(&u, publish(ALICE, &[], &busy_doc())).await;
    assert_eq!(h.reply.code, 403, "{h:?}");
    assert!(ALLOW.contains("PUBLISH"));
}

#[tokio::test]
async fn an_expired_publication_reverts_to_the_registration() {
    let u = publish_uas();
    // REGISTER number `cseq` of alice with these Contact and Expires.
    let register = |cseq: &str, contact: &str, expires: &str| {
        request(
            "REGISTER",
            "sip:sms.example",
            &[
                ("To", "<sip:alice@sms.example>"),
                ("CSeq", cseq),
                ("Contact", contact),
                ("Expires", expires),
            ],
            "",
        )
    };
    let bound = "<sip:alice@127.0.0.1:5070>";
    let h = authed(&u, register("1 REGISTER", bound, "7200")).await;
    assert_eq!(h.reply.code, 200);
    let h = authed(
        &u,
        publish(
            ALICE,
            &[("Expires", "60")],
            &pidf_fixture("baresip-publish-closed.xml"),
        ),
    )
    .await;
    assert_eq!(h.reply.code, 200, "{h:?}");
    // Published closed outweighs registered.
    assert_eq!(
        h.followups,
        vec![Followup::Presence(ALICE.into(), Presence::offline())]
    );
    // A registration change says nothing while a publication stands.
    let h = authed(&u, register("2 REGISTER", "*", "0")).await;
    assert_eq!(h.reply.code, 200);
    assert!(
        !h.followups
            .iter()
            .any(|f| matches!(f, Followup::Presence(..))),
        "{h:?}"
    );
    assert_eq!(
        authed(&u, register("3 REGISTER", bound, "7200"))
            .await
            .reply
            .code,
        200
    );
    assert!(u.expire_publications(NOW + 59).is_empty());
    assert_eq!(
        u.expire_publications(NOW + 60),
        vec![(ALICE.to_owned(), Presence::online())]
    );
}

/// A SUBSCRIBE whose Request-URI is in another domain asks the bridge about
/// a foreign presentity; with no route there it is 404 with the reason.
#[tokio::test]
async fn a_subscribe_to_another_domain_without_a_route_is_404() {
    let (u, fake) = uas();
    *fake.refuse_presence.lock().unwrap() =
        Some(Refusal::NoRoute("sip:jane@otherdomain.test".into()));
    let headers = [
        ("Event", "presence"),
        ("Contact", "<sip:alice@127.0.0.1:5070>"),
    ];
    let req = request("SUBSCRIBE", "sip:jane@otherdomain.test", &headers, "");
    let h = authed(&u, req).await;
    assert_eq!(h.reply.code, 404, "{h:?}");
    assert_eq!(
        h.reply.header("Warning"),
        Some("399 smsbridge \"no route to sip:jane@otherdomain.test\"")
    );
    assert!(h.followups.is_empty());
}

mod authorisation;
mod sessions;
