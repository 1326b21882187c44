//! Messages for IMPS users are offered, not delivered, until the client says
//! it has them: push (NewMessage, then MessageDelivered as a request or as
//! the answer) and Notify/Get (MessageNotification, then GetMessage), each
//! confirmation passed to the bridge as `im_received` for the inbound row
//! the MessageID names; ids never offered to the user are refused (426).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::csp::{self, Message, Mode, Outgoing};
use super::fuzz::Nobody;
use super::messages::ImpsFrontEnd;
use super::server::{Server, ServerConfig};
use super::session::Limits;
use super::wbxml::{self, Version};
use crate::bridge::api::{
    Accepted, BoxFuture, BridgeApi, DeliveryNotice, DeliveryResult, FrontEnd, ImApi, ImFrontEnd,
    ImToSms, ImUser, LoginProof, Recipient, Refusal, SipCredentials, SmsToIm, SubscriberPresence,
};
use crate::store::{BodyFormat, InboundId, UnixTime};
use crate::xml::Element;

/// Lets everyone in and records what their clients confirm.
#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<(String, InboundId)>>,
    online: Mutex<Vec<String>>,
}

impl Recorder {
    fn received(&self) -> Vec<(String, InboundId)> {
        self.received.lock().unwrap().clone()
    }
}

/// What it does not record, it answers as [`Nobody`] does.
impl BridgeApi for Recorder {
    fn submit(&self, req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>> {
        Nobody.submit(req)
    }
    fn sip_credentials(&self, address: String) -> BoxFuture<Option<SipCredentials>> {
        Nobody.sip_credentials(address)
    }
    fn presence(&self, w: String, t: Recipient) -> BoxFuture<Result<SubscriberPresence, Refusal>> {
        Nobody.presence(w, t)
    }
    fn user_online(&self, address: String) {
        self.online.lock().unwrap().push(address);
    }
    fn im_received(&self, user: String, inbound: InboundId) -> BoxFuture<Result<(), Refusal>> {
        self.received.lock().unwrap().push((user, inbound));
        Box::pin(async { Ok(()) })
    }
}

impl ImApi for Recorder {
    fn login(&self, user: String, _proof: LoginProof) -> BoxFuture<Result<ImUser, Refusal>> {
        Box::pin(async move {
            Ok(ImUser {
                address: user.clone(),
                imps_id: Some(user),
                display_name: None,
            })
        })
    }
}

const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Rig {
    server: Arc<Server>,
    bridge: Arc<Recorder>,
    t0: Instant,
}

fn rig() -> Rig {
    let bridge = Arc::new(Recorder::default());
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cfg = ServerConfig {
        domain: "sms.test".into(),
        limits: Limits::default(),
        poll_min: 5,
        cir_tcp: None,
    };
    let server = Server::new(
        cfg,
        Arc::clone(&bridge) as Arc<dyn ImApi>,
        Arc::new(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            format!("tok{n}")
        }),
    );
    Rig {
        server,
        bridge,
        t0: Instant::now(),
    }
}

fn message(session: Option<&str>, mode: Mode, primitive: Element) -> Message {
    Message {
        session_id: session.map(str::to_owned),
        transaction_id: Some("c1".into()),
        mode,
        primitive,
        version: Version::V13,
    }
}

fn el(xml: &str) -> Element {
    crate::xml::parse(xml.as_bytes(), &crate::xml::Rules::CSP).unwrap()
}

impl Rig {
    async fn send(&self, session: Option<&str>, mode: Mode, primitive: &str) -> Option<Outgoing> {
        let m = message(session, mode, el(primitive));
        self.server.respond(Ok(m), self.t0, HERE).await
    }

    async fn ask(&self, session: &str, primitive: &str) -> Element {
        self.send(Some(session), Mode::Request, primitive)
            .await
            .unwrap()
            .primitive
    }

    async fn login(&self, user: &str) -> String {
        let login = format!(
            "<Login-Request><UserID>{user}</UserID><ClientID><URL>t</URL></ClientID><Password>x</Password></Login-Request>"
        );
        let a = self.send(None, Mode::Request, &login).await.unwrap();
        a.primitive.text_at(&["SessionID"]).unwrap().to_owned()
    }

    /// The next server-initiated primitive for `session`.
    async fn poll(&self, session: &str) -> Option<Element> {
        self.send(Some(session), Mode::Request, "<Polling-Request/>")
            .await
            .map(|o| o.primitive)
    }

    fn front_end(&self) -> ImpsFrontEnd {
        ImpsFrontEnd(Arc::clone(&self.server))
    }
}

fn sms(to: &str, inbound: i64, text: &str) -> SmsToIm {
    SmsToIm {
        inbound: InboundId(inbound),
        to_user: to.into(),
        from: "+4915112345678".into(),
        from_name: None,
        text: text.into(),
        received: UnixTime(1_700_000_000),
        incomplete: false,
        body_format: BodyFormat::Plain,
        envelope: None,
    }
}

fn code(p: &Element) -> Option<u16> {
    p.text_at(&["Result", "Code"])?.parse().ok()
}

const ALICE: &str = "wv:alice@sms.test";
const DAVE: &str = "wv:dave@sms.test";

#[tokio::test]
async fn push_offers_a_new_message_named_by_its_inbound_row_until_message_delivered() {
    let r = rig();
    let s = r.login(ALICE).await;
    let fe = r.front_end();
    assert_eq!(
        fe.deliver(sms(ALICE, 7, "hello")).await,
        DeliveryResult::Offered
    );
    // Offered again before the client polled: queued once.
    assert_eq!(
        fe.deliver(sms(ALICE, 7, "hello")).await,
        DeliveryResult::Offered
    );
    let nm = r.poll(&s).await.unwrap();
    assert_eq!(nm.name, "NewMessage");
    assert_eq!(nm.text_at(&["MessageInfo", "MessageID"]), Some("in7"));
    assert_eq!(nm.text_at(&["ContentData"]), Some("hello"));
    assert_eq!(r.poll(&s).await, None, "queued once");
    assert!(r.bridge.received().is_empty(), "offered is not delivered");

    let ack = "<MessageDelivered><MessageID>in7</MessageID></MessageDelivered>";
    assert_eq!(code(&r.ask(&s, ack).await), Some(200));
    assert_eq!(r.bridge.received(), [(ALICE.to_owned(), InboundId(7))]);
    // Said twice: answered the same, the bridge told once.
    assert_eq!(code(&r.ask(&s, ack).await), Some(200));
    assert_eq!(r.bridge.received().len(), 1);
}

#[tokio::test]
async fn message_delivered_as_the_answer_to_new_message_confirms_it() {
    let r = rig();
    let s = r.login(ALICE).await;
    r.front_end().deliver(sms(ALICE, 3, "hi")).await;
    assert!(r.poll(&s).await.is_some());
    let answer = r
        .send(
            Some(&s),
            Mode::Response,
            "<MessageDelivered><MessageID>in3</MessageID></MessageDelivered>",
        )
        .await;
    assert_eq!(answer, None, "a response is not answered");
    assert_eq!(r.bridge.received(), [(ALICE.to_owned(), InboundId(3))]);
}

#[tokio::test]
async fn a_status_200_answering_the_new_message_confirms_it_and_an_error_does_not() {
    let r = rig();
    let s = r.login(ALICE).await;
    let fe = r.front_end();
    fe.deliver(sms(ALICE, 11, "one")).await;
    fe.deliver(sms(ALICE, 12, "two")).await;
    let answer = |tid: String, code: u16| {
        let mut m = message(
            Some(&s),
            Mode::Response,
            csp::status(code, if code == 200 { "" } else { "cannot show it" }),
        );
        m.transaction_id = Some(tid);
        m
    };
    let mut tids = Vec::new();
    while let Some(o) = r.send(Some(&s), Mode::Request, "<Polling-Request/>").await {
        tids.push(o.transaction_id.unwrap());
    }
    assert_eq!(tids.len(), 2);
    let out = r
        .server
        .respond(Ok(answer(tids[0].clone(), 500)), r.t0, HERE)
        .await;
    assert_eq!(out, None);
    assert!(r.bridge.received().is_empty(), "an error is no receipt");
    r.server
        .respond(Ok(answer(tids[1].clone(), 200)), r.t0, HERE)
        .await;
    assert_eq!(r.bridge.received(), [(ALICE.to_owned(), InboundId(12))]);
    // A Status for a transaction that carried no message changes nothing.
    r.server
        .respond(Ok(answer("s99".into(), 200)), r.t0, HERE)
        .await;
    assert_eq!(r.bridge.received().len(), 1);
}

#[tokio::test]
async fn ids_never_offered_to_this_user_are_refused_426() {
    let r = rig();
    let alice = r.login(ALICE).await;
    let dave = r.login(DAVE).await;
    r.front_end().deliver(sms(ALICE, 5, "for alice")).await;
    for p in [
        "<MessageDelivered><MessageID>in5</MessageID></MessageDelivered>",
        "<GetMessage-Request><MessageID>in5</MessageID></GetMessage-Request>",
    ] {
        assert_eq!(code(&r.ask(&dave, p).await), Some(426), "{p}");
    }
    for p in [
        "<MessageDelivered><MessageID>in6</MessageID></MessageDelivered>",
        "<GetMessage-Request><MessageID>nonsense</MessageID></GetMessage-Request>",
    ] {
        assert_eq!(code(&r.ask(&alice, p).await), Some(426), "{p}");
    }
    assert_eq!(code(&r.ask(&alice, "<MessageDelivered/>").await), Some(400));
    assert!(r.bridge.received().is_empty());
}

#[tokio::test]
async fn notify_get_sends_a_notification_and_get_message_fetches_and_confirms() {
    let r = rig();
    let s = r.login(ALICE).await;
    let cap = r
        .ask(
            &s,
            "<ClientCapability-Request><ClientID><URL>t</URL></ClientID><CapabilityList>\
             <ClientType>MOBILE_PHONE</ClientType><InitialDeliveryMethod>N</InitialDeliveryMethod>\
             </CapabilityList></ClientCapability-Request>",
        )
        .await;
    assert_eq!(
        cap.text_at(&["AgreedCapabilityList", "InitialDeliveryMethod"]),
        Some("N")
    );
    assert_eq!(
        r.front_end().deliver(sms(ALICE, 9, "fetch me")).await,
        DeliveryResult::Offered
    );
    let n = r.poll(&s).await.unwrap();
    assert_eq!(n.name, "MessageNotification");
    assert_eq!(n.text_at(&["MessageInfo", "MessageID"]), Some("in9"));
    assert_eq!(n.text_at(&["MessageInfo", "ContentSize"]), Some("8"));
    assert!(n.child("ContentData").is_none(), "only the notification");
    assert!(r.bridge.received().is_empty());

    let get = "<GetMessage-Request><MessageID>in9</MessageID></GetMessage-Request>";
    let m = r.ask(&s, get).await;
    assert_eq!(m.name, "GetMessage-Response");
    assert_eq!(m.text_at(&["MessageInfo", "MessageID"]), Some("in9"));
    assert_eq!(m.text_at(&["ContentData"]), Some("fetch me"));
    assert_eq!(r.bridge.received(), [(ALICE.to_owned(), InboundId(9))]);
    // Fetched again (the answer was lost): the same message, told once.
    assert_eq!(r.ask(&s, get).await, m);
    assert_eq!(r.bridge.received().len(), 1);

    // SetDeliveryMethod back to push.
    let set =
        "<SetDeliveryMethod-Request><DeliveryMethod>P</DeliveryMethod></SetDeliveryMethod-Request>";
    assert_eq!(code(&r.ask(&s, set).await), Some(200));
    r.front_end().deliver(sms(ALICE, 10, "pushed")).await;
    assert_eq!(r.poll(&s).await.unwrap().name, "NewMessage");
}

#[tokio::test]
async fn a_session_ending_with_unconfirmed_messages_has_them_offered_to_another() {
    let r = rig();
    let first = r.login(ALICE).await;
    let _second = r.login(ALICE).await;
    r.bridge.online.lock().unwrap().clear();
    // The newest session gets it; its Logout leaves it unconfirmed.
    r.front_end().deliver(sms(ALICE, 4, "x")).await;
    let newest = {
        let mut sessions = r.server.sessions();
        let s = sessions
            .of_user(ALICE)
            .find(|s| s.offered.contains_key("in4"))
            .unwrap();
        s.id.clone()
    };
    assert_eq!(code(&r.ask(&newest, "<Logout-Request/>").await), Some(200));
    assert_eq!(*r.bridge.online.lock().unwrap(), [ALICE.to_owned()]);
    // The last session going with nothing unconfirmed asks for nothing.
    let other = if newest == first { _second } else { first };
    r.bridge.online.lock().unwrap().clear();
    assert_eq!(code(&r.ask(&other, "<Logout-Request/>").await), Some(200));
    assert!(r.bridge.online.lock().unwrap().is_empty());
}

/// The primitives of both delivery methods in every CSP version's WBXML
/// tables: written and read back the same.
#[tokio::test]
async fn notify_get_and_push_primitives_have_wbxml_tokens_in_every_version() {
    let r = rig();
    let s = r.login(ALICE).await;
    r.front_end().deliver(sms(ALICE, 1, "pushed")).await;
    let new_message = r.poll(&s).await.unwrap();
    let set =
        "<SetDeliveryMethod-Request><DeliveryMethod>N</DeliveryMethod></SetDeliveryMethod-Request>";
    assert_eq!(code(&r.ask(&s, set).await), Some(200));
    r.front_end().deliver(sms(ALICE, 2, "notified")).await;
    let notification = r.poll(&s).await.unwrap();
    let fetched = r
        .ask(
            &s,
            "<GetMessage-Request><MessageID>in2</MessageID></GetMessage-Request>",
        )
        .await;
    let client = [
        el("<GetMessage-Request><MessageID>in2</MessageID></GetMessage-Request>"),
        el("<MessageDelivered><MessageID>in1</MessageID></MessageDelivered>"),
        el(
            "<SetDeliveryMethod-Request><DeliveryMethod>N</DeliveryMethod></SetDeliveryMethod-Request>",
        ),
    ];
    for v in Version::ALL {
        for p in [&new_message, &notification, &fetched]
            .into_iter()
            .chain(&client)
        {
            let o = Outgoing {
                session_id: Some(s.clone()),
                transaction_id: Some("t1".into()),
                mode: Mode::Request,
                poll: false,
                primitive: p.clone(),
            };
            let root = csp::envelope_in(&o, v);
            let bytes =
                wbxml::encode(&root, v).unwrap_or_else(|e| panic!("{} in {v:?}: {e}", p.name));
            let back = csp::from_root(wbxml::decode(&bytes).unwrap().root).unwrap();
            // The same message as XML, read back.
            let kept = csp::parse(&csp::encode_in(&o, v)).unwrap();
            assert_eq!(back.primitive, kept.primitive, "{} in {v:?}", p.name);
            assert_eq!(
                back.primitive.text_at(&["MessageInfo", "MessageID"]),
                p.text_at(&["MessageInfo", "MessageID"]),
                "{} in {v:?}",
                p.name
            );
        }
    }
}

fn notice(recipient: &str, recipient_user: Option<&str>, displayed: bool) -> DeliveryNotice {
    DeliveryNotice {
        to_user: ALICE.into(),
        front_end: FrontEnd::Imps,
        im_message_id: "m1".into(),
        recipient: recipient.into(),
        recipient_user: recipient_user.map(str::to_owned),
        delivered: true,
        displayed,
        neutral: false,
        at: UnixTime(1_700_000_100),
        reason: None,
        cause: None,
    }
}

/// A delivery report names the recipient as an IMPS client knows them: a
/// user of the bridge by their user part, a subscriber by number, a user
/// of another domain with their domain. A display notification has no CSP
/// form and is not queued.
#[tokio::test]
async fn delivery_reports_name_user_recipients_and_displays_are_not_queued() {
    let r = rig();
    let s = r.login(ALICE).await;
    let fe = r.front_end();
    for (recipient, part, shown) in [
        ("sip:erin@sms.test", Some("erin"), "wv:erin@sms.test"),
        ("+4915112345678", None, "wv:+4915112345678@sms.test"),
        ("sip:jane@other.test", None, "wv:jane@other.test"),
    ] {
        assert_eq!(
            fe.notify(notice(recipient, part, false)).await,
            DeliveryResult::Delivered
        );
        let d = r.poll(&s).await.unwrap();
        assert_eq!(d.name, "DeliveryReport-Request");
        assert_eq!(code(&d), Some(200));
        assert_eq!(
            d.text_at(&["MessageInfo", "Recipient", "User", "UserID"]),
            Some(shown)
        );
    }
    assert_eq!(
        fe.notify(notice("sip:erin@sms.test", Some("erin"), true))
            .await,
        DeliveryResult::Delivered
    );
    assert_eq!(r.poll(&s).await, None);
}
