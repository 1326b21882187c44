//! Presence authorisation on the IMPS side, over a fake bridge that keeps
//! each presentity's decisions: a watch with no decision is pending and the
//! presentity is asked (PresenceAuth-Request in CSP 1.1/1.2,
//! Notification-Request ANU in 1.3); the answer (PresenceAuth-User, or a 1.3
//! attribute-list grant) goes to the bridge, whose news
//! (`ImFrontEnd::watch_changed`) shows the watcher the presentity, offline,
//! or nothing. Harry watches Erin; both use IMPS.

mod imps_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use imps_support::{Answer, read, user};
use smsbridge::bridge::api::{
    Accepted, BoxFuture, BridgeApi, FrontEnd, ImApi, ImFrontEnd, ImToSms, ImUser, LoginProof,
    Recipient, Refusal, SipCredentials, SubHandling, SubscriberPresence, Target, UnixTime,
    WatchChanged, WatchDecision, Watched, WatcherInfo,
};
use smsbridge::imps::csp::{self, Mode, Outgoing, Version};
use smsbridge::imps::session::Limits;
use smsbridge::imps::{ImpsFrontEnd, Server, ServerConfig, wbxml};
use smsbridge::xml::Element;

const HARRY: &str = "wv:harry@example.com";
const ERIN: &str = "wv:erin@example.com";

/// Decisions by (presentity, watcher), lower-cased; what the front end was
/// told and asked.
#[derive(Default)]
struct Fake {
    decisions: Mutex<HashMap<(String, String), WatchDecision>>,
    decided: Mutex<Vec<(String, String, SubHandling)>>,
    front_end: Mutex<Option<ImpsFrontEnd>>,
}

fn key(presentity: &str, watcher: &str) -> (String, String) {
    (
        presentity.to_ascii_lowercase(),
        watcher.to_ascii_lowercase(),
    )
}

impl Fake {
    fn front_end(&self) -> ImpsFrontEnd {
        self.front_end.lock().unwrap().clone().expect("wired")
    }
}

impl BridgeApi for Fake {
    fn submit(&self, _req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>> {
        Box::pin(async { Err(Refusal::Invalid("no SMS here".into())) })
    }
    fn sip_credentials(&self, _a: String) -> BoxFuture<Option<SipCredentials>> {
        Box::pin(async { None })
    }
    fn presence(&self, w: String, _t: Recipient) -> BoxFuture<Result<SubscriberPresence, Refusal>> {
        Box::pin(async move { Err(Refusal::UnknownUser(w)) })
    }
    fn user_online(&self, _a: String) {}

    fn authorise_watch(
        &self,
        presentity: String,
        watcher: String,
    ) -> BoxFuture<Result<WatchDecision, Refusal>> {
        let k = key(&presentity, &watcher);
        let known = self.decisions.lock().unwrap().get(&k).copied();
        let decision = known.unwrap_or_else(|| {
            self.decisions
                .lock()
                .unwrap()
                .insert(k, WatchDecision::Pending);
            WatchDecision::Pending
        });
        if decision == WatchDecision::Pending {
            self.front_end().watcher_pending(&presentity, &watcher);
        }
        Box::pin(async move { Ok(decision) })
    }

    fn watchers(&self, presentity: String) -> BoxFuture<Result<Vec<WatcherInfo>, Refusal>> {
        let p = presentity.to_ascii_lowercase();
        let mut list: Vec<WatcherInfo> = self
            .decisions
            .lock()
            .unwrap()
            .iter()
            .filter(|((pk, _), _)| *pk == p)
            .map(|((_, w), d)| WatcherInfo {
                watcher: w.clone(),
                decision: *d,
                since: UnixTime(0),
            })
            .collect();
        list.sort_by(|a, b| a.watcher.cmp(&b.watcher));
        Box::pin(async move { Ok(list) })
    }

    fn decide_watcher(
        &self,
        presentity: String,
        watcher: String,
        handling: SubHandling,
    ) -> BoxFuture<Result<(), Refusal>> {
        let decision = match handling {
            SubHandling::Allow => WatchDecision::Allow,
            SubHandling::PoliteBlock => WatchDecision::PoliteBlock,
            SubHandling::Block => WatchDecision::Block,
            SubHandling::Confirm => WatchDecision::Pending,
        };
        self.decisions
            .lock()
            .unwrap()
            .insert(key(&presentity, &watcher), decision);
        self.decided
            .lock()
            .unwrap()
            .push((presentity.clone(), watcher.clone(), handling));
        self.front_end().watch_changed(&WatchChanged {
            presentity,
            watcher,
            decision,
        });
        Box::pin(async { Ok(()) })
    }
}

impl ImApi for Fake {
    fn login(&self, user: String, _p: LoginProof) -> BoxFuture<Result<ImUser, Refusal>> {
        Box::pin(async move {
            Ok(ImUser {
                address: user.clone(),
                imps_id: Some(user),
                display_name: None,
            })
        })
    }
    fn watch(&self, _watcher: String, name: String) -> BoxFuture<Result<Watched, Refusal>> {
        Box::pin(async move {
            let part = name
                .strip_prefix("wv:")
                .and_then(|r| r.strip_suffix("@example.com"))
                .filter(|p| ["erin", "harry"].contains(p));
            match part {
                Some(p) => Ok(Watched {
                    target: Target::User {
                        user_part: p.to_owned(),
                        front_end: FrontEnd::Imps,
                        name: None,
                    },
                    online: None,
                    // The fake's `authorise_watch` decides; this is what the
                    // bridge says before asking.
                    decision: WatchDecision::Allow,
                    unavailable: None,
                }),
                None => Err(Refusal::UnknownRecipient(name)),
            }
        })
    }
}

struct Rig {
    server: Arc<Server>,
    fake: Arc<Fake>,
    t0: Instant,
}

fn rig() -> Rig {
    let fake = Arc::new(Fake::default());
    let bridge: Arc<dyn ImApi> = fake.clone();
    let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = Server::new(
        ServerConfig {
            domain: "example.com".into(),
            limits: Limits::default(),
            poll_min: 5,
            cir_tcp: None,
        },
        bridge,
        Arc::new(move || format!("tok{}", n.fetch_add(1, std::sync::atomic::Ordering::SeqCst))),
    );
    *fake.front_end.lock().unwrap() = Some(ImpsFrontEnd(Arc::clone(&server)));
    Rig {
        server,
        fake,
        t0: Instant::now(),
    }
}

/// A CSP message in `version` (its namespaces), in session `session`.
fn message(version: Version, mode: Mode, session: Option<&str>, primitive: &str) -> Vec<u8> {
    let [csp_ns, trc_ns, _] = csp::namespaces(version);
    let sd = match session {
        Some(id) => format!("<SessionType>Inband</SessionType><SessionID>{id}</SessionID>"),
        None => "<SessionType>Outband</SessionType>".into(),
    };
    let mode = match mode {
        Mode::Request => "Request",
        Mode::Response => "Response",
    };
    format!(
        "<?xml version=\"1.0\"?><WV-CSP-Message xmlns=\"{csp_ns}\"><Session>\
         <SessionDescriptor>{sd}</SessionDescriptor><Transaction><TransactionDescriptor>\
         <TransactionMode>{mode}</TransactionMode><TransactionID>c1</TransactionID>\
         </TransactionDescriptor><TransactionContent xmlns=\"{trc_ns}\">{primitive}\
         </TransactionContent></Transaction></Session></WV-CSP-Message>"
    )
    .into_bytes()
}

/// One client: who, in which CSP version, in which session.
struct Client<'a> {
    rig: &'a Rig,
    version: Version,
    session: String,
}

impl Rig {
    async fn send(&self, version: Version, mode: Mode, s: Option<&str>, p: &str) -> Answer {
        let r = self
            .server
            .handle(&message(version, mode, s, p), self.t0)
            .await;
        read(r.http, &r.body)
    }

    async fn login(&self, who: &str, version: Version) -> Client<'_> {
        let a = self
            .send(
                version,
                Mode::Request,
                None,
                &format!(
                    "<Login-Request><UserID>{who}</UserID><ClientID><URL>t</URL></ClientID>\
                     <Password>pw</Password><TimeToLive>600</TimeToLive></Login-Request>"
                ),
            )
            .await;
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        Client {
            rig: self,
            version,
            session: a.text(&["SessionID"]).expect("SessionID").to_owned(),
        }
    }

    fn decided(&self) -> Vec<(String, String, SubHandling)> {
        self.fake.decided.lock().unwrap().clone()
    }

    /// The bridge heard Erin decide about Harry so, in this order.
    fn erin_decided(&self, handling: &[SubHandling]) {
        let expected: Vec<_> = handling
            .iter()
            .map(|h| (ERIN.to_owned(), HARRY.to_owned(), *h))
            .collect();
        assert_eq!(self.decided(), expected);
    }

    fn rule(&self, presentity: &str, watcher: &str, d: WatchDecision) {
        self.fake
            .decisions
            .lock()
            .unwrap()
            .insert(key(presentity, watcher), d);
    }
}

impl Client<'_> {
    async fn ask(&self, primitive: &str) -> Answer {
        self.rig
            .send(self.version, Mode::Request, Some(&self.session), primitive)
            .await
    }

    /// Answers a server-initiated transaction (TransactionMode Response).
    async fn answer(&self, primitive: &str) -> Answer {
        self.rig
            .send(self.version, Mode::Response, Some(&self.session), primitive)
            .await
    }

    async fn poll(&self) -> Answer {
        self.ask("<Polling-Request/>").await
    }

    /// Polls until nothing is left; what came, in order.
    async fn drain(&self) -> Vec<Answer> {
        let mut out = Vec::new();
        for _ in 0..50 {
            let a = self.poll().await;
            if a.empty {
                return out;
            }
            out.push(a);
        }
        panic!("the queue never emptied: {out:?}");
    }

    /// Harry subscribes to Erin, and it is taken (pending or not).
    async fn subscribes_to_erin(&self) {
        let a = self.about("SubscribePresence", ERIN).await;
        assert_eq!(a.code(), Some(200), "{}", a.raw);
    }

    async fn about(&self, kind: &str, who: &str) -> Answer {
        self.ask(&format!("<{kind}-Request>{}</{kind}-Request>", user(who)))
            .await
    }
}

/// The presentity's answer about `watcher`.
fn presence_auth_user(watcher: &str, accept: bool) -> String {
    let acceptance = if accept { "T" } else { "F" };
    format!(
        "<PresenceAuth-User><UserID>{watcher}</UserID><Acceptance>{acceptance}</Acceptance>\
         </PresenceAuth-User>"
    )
}

/// The PresenceValue of attribute `name` in the first Presence of `a`.
fn value<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.text(&["Presence", "PresenceSubList", name, "PresenceValue"])
}

/// The one PresenceNotification among `pushed`, which is about Erin.
fn about_erin(pushed: &[Answer]) -> &Answer {
    let n = notifications(pushed);
    assert_eq!(n.len(), 1, "{pushed:?}");
    assert_eq!(n[0].text(&["Presence", "UserID"]), Some(ERIN));
    n[0]
}

fn notifications(all: &[Answer]) -> Vec<&Answer> {
    all.iter()
        .filter(|a| a.primitive.name == "PresenceNotification-Request")
        .collect()
}

/// Erin says she is at lunch.
async fn at_lunch(erin: &Client<'_>) {
    let update = "<UpdatePresence-Request><PresenceSubList>\
                  <OnlineStatus><Qualifier>T</Qualifier><PresenceValue>T</PresenceValue></OnlineStatus>\
                  <StatusText><Qualifier>T</Qualifier><PresenceValue>at lunch</PresenceValue></StatusText>\
                  </PresenceSubList></UpdatePresence-Request>";
    assert_eq!(erin.ask(update).await.code(), Some(200));
}

#[tokio::test]
async fn a_pending_watch_shows_nothing_until_the_presentity_accepts() {
    let r = rig();
    let erin = r.login(ERIN, Version::V12).await;
    at_lunch(&erin).await;
    let harry = r.login(HARRY, Version::V13).await;

    // No rule: subscribed, pending, nothing shown.
    let s = harry.about("SubscribePresence", ERIN).await;
    assert_eq!(s.code(), Some(200), "{}", s.raw);
    assert!(notifications(&harry.drain().await).is_empty());
    let g = harry.about("GetPresence", ERIN).await;
    assert_eq!(g.code(), Some(200), "{}", g.raw);
    assert!(g.primitive.child("Presence").is_none(), "{}", g.raw);

    // Erin (CSP 1.2) is asked once, however often Harry tries.
    let asked = erin.drain().await;
    let requests: Vec<&Answer> = asked
        .iter()
        .filter(|a| a.primitive.name == "PresenceAuth-Request")
        .collect();
    assert_eq!(requests.len(), 1, "{asked:?}");
    assert_eq!(requests[0].mode, Some(Mode::Request));
    assert_eq!(requests[0].text(&["UserID"]), Some(HARRY));
    assert!(
        erin.answer("<Status><Result><Code>200</Code></Result></Status>")
            .await
            .empty
    );

    // The status query says Harry waits.
    let q = erin.ask("<GetReactiveAuthStatus-Request/>").await;
    assert_eq!(q.primitive.name, "GetReactiveAuthStatus-Response");
    assert_eq!(q.code(), Some(200), "{}", q.raw);
    let status = ["ReactiveAuthStatusList", "ReactiveAuthStatus"];
    assert_eq!(q.text(&[status[0], status[1], "UserID"]), Some(HARRY));
    assert_eq!(
        q.text(&[status[0], status[1], "ReactiveAuthState"]),
        Some("PENDING")
    );

    // She accepts: the bridge hears it, Harry sees her at once.
    let accept = presence_auth_user(HARRY, true);
    let a = erin.ask(&accept).await;
    assert_eq!(a.primitive.name, "Status");
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    r.erin_decided(&[SubHandling::Allow]);
    let pushed = harry.drain().await;
    let n = about_erin(&pushed);
    assert_eq!(value(n, "OnlineStatus"), Some("T"));
    assert_eq!(value(n, "StatusText"), Some("at lunch"));
    let q = erin.ask("<GetReactiveAuthStatus-Request/>").await;
    assert_eq!(
        q.text(&[status[0], status[1], "ReactiveAuthState"]),
        Some("GRANTED")
    );

    // Her later news reaches him, and GetPresence answers.
    let back = "<UpdatePresence-Request><PresenceSubList>\
                <StatusText><Qualifier>T</Qualifier><PresenceValue>back</PresenceValue></StatusText>\
                </PresenceSubList></UpdatePresence-Request>";
    assert_eq!(erin.ask(back).await.code(), Some(200));
    let pushed = harry.drain().await;
    assert_eq!(value(notifications(&pushed)[0], "StatusText"), Some("back"));
    let g = harry.about("GetPresence", ERIN).await;
    assert_eq!(value(&g, "StatusText"), Some("back"));
}

#[tokio::test]
async fn a_refused_watcher_is_shown_nothing_and_loses_the_subscription() {
    let r = rig();
    let erin = r.login(ERIN, Version::V12).await;
    let harry = r.login(HARRY, Version::V13).await;
    harry.subscribes_to_erin().await;
    erin.drain().await;
    let deny = presence_auth_user(HARRY, false);
    assert_eq!(erin.ask(&deny).await.code(), Some(200));
    r.erin_decided(&[SubHandling::Block]);
    // A Presence without attributes ends what he was shown, and nothing
    // more comes.
    let pushed = harry.drain().await;
    let n = about_erin(&pushed);
    let attrs = n.primitive.at(&["Presence", "PresenceSubList"]).unwrap();
    assert!(attrs.children.is_empty(), "{}", n.raw);
    at_lunch(&erin).await;
    assert!(notifications(&harry.drain().await).is_empty());
    // Asked again: refused with Forbidden, and not a word on why.
    let g = harry.about("GetPresence", ERIN).await;
    assert_eq!(g.code(), Some(403), "{}", g.raw);
    assert!(!g.raw.contains("block"), "{}", g.raw);
    let s = harry.about("SubscribePresence", ERIN).await;
    assert_eq!(s.code(), Some(403), "{}", s.raw);
    assert!(erin.drain().await.is_empty(), "Erin is not asked again");
}

#[tokio::test]
async fn a_politely_blocked_watcher_sees_the_presentity_offline() {
    let r = rig();
    let erin = r.login(ERIN, Version::V12).await;
    at_lunch(&erin).await;
    r.rule(ERIN, HARRY, WatchDecision::PoliteBlock);
    let harry = r.login(HARRY, Version::V13).await;
    harry.subscribes_to_erin().await;
    let pushed = harry.drain().await;
    let n = about_erin(&pushed);
    assert_eq!(value(n, "OnlineStatus"), Some("F"));
    assert_eq!(value(n, "StatusText"), None);
    let g = harry.about("GetPresence", ERIN).await;
    assert_eq!(g.code(), Some(200));
    assert_eq!(value(&g, "OnlineStatus"), Some("F"));
    // Her news still shows him offline.
    at_lunch(&erin).await;
    let pushed = harry.drain().await;
    assert_eq!(value(notifications(&pushed)[0], "OnlineStatus"), Some("F"));
    assert!(
        erin.drain().await.is_empty(),
        "a decided watcher is not asked"
    );
}

#[tokio::test]
async fn a_presentity_logged_out_is_asked_at_login_and_may_withdraw_later() {
    let r = rig();
    let harry = r.login(HARRY, Version::V13).await;
    harry.subscribes_to_erin().await;
    let erin = r.login(ERIN, Version::V11).await;
    let asked = erin.drain().await;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].primitive.name, "PresenceAuth-Request");
    assert_eq!(asked[0].text(&["UserID"]), Some(HARRY));
    // CSP 1.1: the answer may come as the response to that transaction.
    let accept = presence_auth_user(HARRY, true);
    assert!(erin.answer(&accept).await.empty);
    r.erin_decided(&[SubHandling::Allow]);
    let pushed = harry.drain().await;
    assert_eq!(value(notifications(&pushed)[0], "OnlineStatus"), Some("T"));
    // She withdraws it: he is shown nothing again.
    let cancel = format!("<CancelAuth-Request><UserID>{HARRY}</UserID></CancelAuth-Request>");
    assert_eq!(erin.ask(&cancel).await.code(), Some(200));
    r.erin_decided(&[SubHandling::Allow, SubHandling::Block]);
    let pushed = harry.drain().await;
    let n = about_erin(&pushed);
    assert_eq!(value(n, "OnlineStatus"), None);
}

#[tokio::test]
async fn csp_1_3_is_asked_with_a_notification_and_grants_with_an_attribute_list() {
    let r = rig();
    let erin = r.login(ERIN, Version::V13).await;
    let harry = r.login(HARRY, Version::V13).await;
    harry.subscribes_to_erin().await;
    let asked = erin.drain().await;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].primitive.name, "Notification-Request");
    assert_eq!(asked[0].text(&["NotificationType"]), Some("ANU"));
    assert_eq!(asked[0].text(&["UserIDList", "UserID"]), Some(HARRY));
    // The 1.2 status query is gone from 1.3.
    let q = erin.ask("<GetReactiveAuthStatus-Request/>").await;
    assert_eq!(q.code(), Some(405), "{}", q.raw);

    // Lists for contact lists are not kept; one naming Harry grants him.
    let for_list = "<CreateAttributeList-Request><PresenceSubList/><ContactListIDList>\
                    <ContactList>wv:erin/~friends@example.com</ContactList></ContactListIDList>\
                    </CreateAttributeList-Request>";
    assert_eq!(erin.ask(for_list).await.code(), Some(405));
    assert!(r.decided().is_empty());
    let grant = format!(
        "<CreateAttributeList-Request><PresenceSubList><OnlineStatus/><StatusText/></PresenceSubList>\
         <UserIDList><UserID>{HARRY}</UserID></UserIDList></CreateAttributeList-Request>"
    );
    assert_eq!(erin.ask(&grant).await.code(), Some(200));
    r.erin_decided(&[SubHandling::Allow]);
    let pushed = harry.drain().await;
    assert_eq!(value(notifications(&pushed)[0], "OnlineStatus"), Some("T"));

    // Revoked: nothing any more. PresenceAuth-User works in 1.3 too.
    let revoke = format!(
        "<DeleteAttributeList-Request><UserIDList><UserID>{HARRY}</UserID></UserIDList>\
         </DeleteAttributeList-Request>"
    );
    assert_eq!(erin.ask(&revoke).await.code(), Some(200));
    assert_eq!(r.decided()[1].2, SubHandling::Block);
    let accept = presence_auth_user(HARRY, true);
    assert_eq!(erin.ask(&accept).await.code(), Some(200));
    assert_eq!(r.decided()[2].2, SubHandling::Allow);
    let bad = format!("<PresenceAuth-User><UserID>{HARRY}</UserID></PresenceAuth-User>");
    assert_eq!(erin.ask(&bad).await.code(), Some(400));
}

/// The new primitives in WBXML: written with each version's tables and read
/// back as the same document.
#[test]
fn the_authorisation_primitives_round_trip_in_wbxml() {
    let presence_auth = Element::new("PresenceAuth-Request").with(Element::text("UserID", HARRY));
    let status = Element::new("GetReactiveAuthStatus-Response")
        .with(csp::result(200, ""))
        .with(
            Element::new("ReactiveAuthStatusList").with(
                Element::new("ReactiveAuthStatus")
                    .with(Element::text("UserID", HARRY))
                    .with(Element::text("ReactiveAuthState", "PENDING")),
            ),
        );
    let answer = Element::new("PresenceAuth-User")
        .with(Element::text("UserID", HARRY))
        .with(Element::text("Acceptance", "T"));
    let notification = Element::new("Notification-Request")
        .with(Element::text("NotificationType", "ANU"))
        .with(Element::new("UserIDList").with(Element::text("UserID", HARRY)));
    // Each in the tables of a version that defines it.
    let cases = [
        (Version::V12, presence_auth),
        (Version::V12, status),
        (Version::V12, answer.clone()),
        (Version::V13, notification),
    ];
    for (version, primitive) in cases {
        let out = Outgoing {
            session_id: Some("s1".into()),
            transaction_id: Some("t1".into()),
            mode: Mode::Request,
            poll: false,
            primitive: primitive.clone(),
        };
        let root = csp::envelope_in(&out, version);
        let bytes = wbxml::encode(&root, version)
            .unwrap_or_else(|e| panic!("{version:?} {}: {e}", primitive.name));
        let doc = wbxml::decode(&bytes).unwrap();
        assert_eq!(doc.version, version);
        let from_wbxml = csp::from_root(doc.root).unwrap();
        let from_xml = csp::parse(&csp::encode_in(&out, version)).unwrap();
        assert_eq!(from_wbxml, from_xml, "{version:?} {}", primitive.name);
        assert_eq!(from_wbxml.version, version);
        assert_eq!(from_wbxml.primitive.name, primitive.name);
        assert_eq!(
            from_wbxml.primitive.children.len(),
            primitive.children.len()
        );
    }
    // A 1.3 client's PresenceAuth-User, a primitive 1.3 removed: read with
    // its 1.2 token, though the server would not write it in 1.3.
    let out = Outgoing {
        session_id: Some("s1".into()),
        transaction_id: Some("t1".into()),
        mode: Mode::Request,
        poll: false,
        primitive: answer,
    };
    let bytes = wbxml::encode(&csp::envelope(&out), Version::V13).unwrap();
    let read = csp::from_root(wbxml::decode(&bytes).unwrap().root).unwrap();
    assert_eq!(read.version, Version::V13);
    assert_eq!(
        read.primitive,
        csp::parse(&csp::encode(&out)).unwrap().primitive
    );
    assert_eq!(read.primitive.text_at(&["Acceptance"]), Some("T"));
}

#[tokio::test]
async fn a_refused_user_among_several_is_named_in_a_partial_result() {
    let r = rig();
    let _erin = r.login(ERIN, Version::V12).await;
    let harry = r.login(HARRY, Version::V13).await;
    r.rule(ERIN, HARRY, WatchDecision::Block);
    r.rule(HARRY, HARRY, WatchDecision::Allow);
    let both = format!(
        "<SubscribePresence-Request>{}{}</SubscribePresence-Request>",
        user(ERIN),
        user(HARRY)
    );
    let a = harry.ask(&both).await;
    assert_eq!(a.code(), Some(201), "{}", a.raw);
    let detail = ["Result", "DetailedResult"];
    assert_eq!(a.text(&[detail[0], detail[1], "UserID"]), Some(ERIN));
    assert_eq!(a.text(&[detail[0], detail[1], "Code"]), Some("403"));
    // Subscribed to himself only.
    let pushed = harry.drain().await;
    let n = notifications(&pushed);
    assert_eq!(n.len(), 1, "{pushed:?}");
    let shown: Vec<&str> = n[0]
        .primitive
        .children_named("Presence")
        .filter_map(|p| p.text_at(&["UserID"]))
        .collect();
    assert_eq!(shown, [HARRY]);
}
