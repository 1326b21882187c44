//! The IMPS side of watches of users in other domains: SubscribePresence and
//! GetPresence start `ImApi::watch_foreign`, the news
//! (`ImFrontEnd::foreign_presence`) becomes PresenceNotifications, and
//! UnsubscribePresence, Logout and session expiry end the watch. The bridge
//! is a fake that names `wv:jane@otherdomain.test` a foreign user.

mod imps_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imps_support::{read, request, user};
use smsbridge::bridge::api::{
    Accepted, BoxFuture, BridgeApi, ForeignPresence, ForeignWatchState, ImApi, ImFrontEnd, ImToSms,
    ImUser, LoginProof, Recipient, Refusal, SipCredentials, SubscriberPresence, Target, Watched,
};
use smsbridge::imps::session::Limits;
use smsbridge::imps::{ImpsFrontEnd, Server, ServerConfig};
use smsbridge::presence::{Availability, ClientInfo, Presence};

const HARRY: &str = "wv:harry@example.com";
const JANE_WV: &str = "wv:jane@otherdomain.test";
const JANE: &str = "sip:jane@otherdomain.test";

#[derive(Default)]
struct Fake {
    watched: Mutex<Vec<(String, String)>>,
    unwatched: Mutex<Vec<(String, String)>>,
    refuse_watch: Mutex<bool>,
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
            // Anyone at otherdomain.test is a foreign user.
            if let Some(rest) = name
                .strip_prefix("wv:")
                .filter(|r| r.ends_with("@otherdomain.test"))
            {
                Ok(Watched {
                    target: Target::Foreign {
                        address: format!("sip:{rest}"),
                        name: None,
                    },
                    online: None,
                    decision: smsbridge::bridge::api::WatchDecision::Allow,
                    unavailable: None,
                })
            } else {
                Err(Refusal::NoRoute(name))
            }
        })
    }
    fn watch_foreign(&self, watcher: String, presentity: String) -> BoxFuture<Result<(), Refusal>> {
        let refuse = *self.refuse_watch.lock().unwrap();
        if !refuse {
            self.watched
                .lock()
                .unwrap()
                .push((watcher, presentity.clone()));
        }
        Box::pin(async move {
            if refuse {
                Err(Refusal::NoRoute(presentity))
            } else {
                Ok(())
            }
        })
    }
    fn unwatch_foreign(&self, watcher: String, presentity: String) {
        self.unwatched.lock().unwrap().push((watcher, presentity));
    }
}

struct Rig {
    server: Arc<Server>,
    fake: Arc<Fake>,
    fe: ImpsFrontEnd,
    t0: Instant,
}

fn rig() -> Rig {
    let fake = Arc::new(Fake::default());
    let bridge: Arc<dyn ImApi> = fake.clone();
    let server = Server::new(
        ServerConfig {
            domain: "example.com".into(),
            limits: Limits::default(),
            poll_min: 5,
            cir_tcp: None,
        },
        bridge,
        Arc::new(|| format!("tok{}", rand_counter())),
    );
    Rig {
        fe: ImpsFrontEnd(Arc::clone(&server)),
        server,
        fake,
        t0: Instant::now(),
    }
}

/// The rig with Harry logged in, and his SessionID.
async fn logged_in() -> (Rig, String) {
    let r = rig();
    let sid = r.login().await;
    (r, sid)
}

fn rand_counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

impl Rig {
    async fn ask(&self, session: Option<&str>, primitive: &str) -> imps_support::Answer {
        let r = self
            .server
            .handle(&request(session, primitive), self.t0)
            .await;
        read(r.http, &r.body)
    }

    async fn login(&self) -> String {
        let a = self
            .ask(
                None,
                &format!(
                    "<Login-Request><UserID>{HARRY}</UserID><ClientID><URL>t</URL></ClientID>\
                     <Password>pw</Password><TimeToLive>600</TimeToLive></Login-Request>"
                ),
            )
            .await;
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        a.text(&["SessionID"]).unwrap().to_owned()
    }

    /// `<kind>-Request` naming Jane (SubscribePresence, GetPresence,
    /// UnsubscribePresence).
    async fn about_jane(&self, session: Option<&str>, kind: &str) -> imps_support::Answer {
        let primitive = format!("<{kind}-Request>{}</{kind}-Request>", user(JANE_WV));
        self.ask(session, &primitive).await
    }

    /// Polls and finds no PresenceNotification waiting.
    async fn nothing_pushed(&self, session: Option<&str>) {
        let n = self.ask(session, "<Polling-Request/>").await;
        assert_ne!(
            n.primitive.name, "PresenceNotification-Request",
            "{}",
            n.raw
        );
    }

    fn watched(&self) -> Vec<(String, String)> {
        self.fake.watched.lock().unwrap().clone()
    }

    fn unwatched(&self) -> Vec<(String, String)> {
        self.fake.unwatched.lock().unwrap().clone()
    }

    fn news(&self, state: ForeignWatchState) {
        self.fe.foreign_presence(ForeignPresence {
            watcher: HARRY.into(),
            presentity: JANE.into(),
            state,
        });
    }
}

/// The value of attribute `name` in the first Presence of `a`.
fn value<'a>(a: &'a imps_support::Answer, name: &str) -> Option<&'a str> {
    a.text(&["Presence", "PresenceSubList", name, "PresenceValue"])
}

fn watch_pair() -> (String, String) {
    (HARRY.to_owned(), JANE.to_owned())
}

#[tokio::test]
async fn subscribing_to_a_foreign_user_watches_them_and_pushes_their_news() {
    let (r, sid) = logged_in().await;
    let s = Some(sid.as_str());
    let a = r.about_jane(s, "SubscribePresence").await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    assert_eq!(r.watched(), vec![watch_pair()]);
    // Nothing known yet: shown offline.
    let n = r.ask(s, "<Polling-Request/>").await;
    assert_eq!(n.primitive.name, "PresenceNotification-Request");
    assert_eq!(n.text(&["Presence", "UserID"]), Some(JANE_WV));
    assert_eq!(value(&n, "OnlineStatus"), Some("F"));

    // Her server says she is online, busy, with a note and a client.
    let jane = Presence {
        open: true,
        availability: Some(Availability::Discreet),
        activities: vec!["on-the-phone".into()],
        mood: Some("happy".into()),
        note: Some("On a call".into()),
        client: Some(ClientInfo {
            client_type: Some("COMPUTER".into()),
            producer: None,
            model: Some("baresip".into()),
        }),
    };
    r.news(ForeignWatchState::Active(jane));
    let n = r.ask(s, "<Polling-Request/>").await;
    assert_eq!(
        n.primitive.name, "PresenceNotification-Request",
        "{}",
        n.raw
    );
    assert_eq!(value(&n, "OnlineStatus"), Some("T"));
    assert_eq!(value(&n, "UserAvailability"), Some("DISCREET"));
    assert_eq!(value(&n, "StatusText"), Some("On a call"));
    assert_eq!(value(&n, "StatusMood"), Some("HAPPY"));
    assert_eq!(
        n.text(&["Presence", "PresenceSubList", "ClientInfo", "Model"]),
        Some("baresip")
    );
    // GetPresence answers from what is known, without a second watch.
    let g = r.about_jane(s, "GetPresence").await;
    assert_eq!(g.code(), Some(200), "{}", g.raw);
    assert_eq!(value(&g, "StatusText"), Some("On a call"));
    assert_eq!(r.watched(), vec![watch_pair()]);

    // Pending and terminated show offline.
    r.news(ForeignWatchState::Terminated("rejected".into()));
    let n = r.ask(s, "<Polling-Request/>").await;
    assert_eq!(value(&n, "OnlineStatus"), Some("F"));
    assert_eq!(value(&n, "UserAvailability"), Some("NOT_AVAILABLE"));
    assert_eq!(value(&n, "StatusText"), None);

    // Ended there: forgotten, so subscribing again starts a new watch.
    r.news(ForeignWatchState::Active(Presence::online()));
    r.nothing_pushed(s).await;
    let a = r.about_jane(s, "SubscribePresence").await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    assert_eq!(r.watched(), vec![watch_pair(), watch_pair()]);
    let n = r.ask(s, "<Polling-Request/>").await;
    assert_eq!(value(&n, "OnlineStatus"), Some("F"), "pending again");

    // Unsubscribing ends the watch there; later news is dropped.
    let a = r.about_jane(s, "UnsubscribePresence").await;
    assert_eq!(a.code(), Some(200));
    assert_eq!(r.unwatched(), vec![watch_pair()]);
    r.news(ForeignWatchState::Active(Presence::online()));
    r.nothing_pushed(s).await;
}

#[tokio::test]
async fn get_presence_watches_until_logout() {
    let (r, sid) = logged_in().await;
    let s = Some(sid.as_str());
    let g = r.about_jane(s, "GetPresence").await;
    assert_eq!(g.code(), Some(200), "{}", g.raw);
    assert_eq!(value(&g, "OnlineStatus"), Some("F"), "nothing known yet");
    assert_eq!(r.watched(), vec![watch_pair()]);
    r.news(ForeignWatchState::Active(Presence::online()));
    // Not subscribed: no notification, but GetPresence knows.
    r.nothing_pushed(s).await;
    let g = r.about_jane(s, "GetPresence").await;
    assert_eq!(value(&g, "OnlineStatus"), Some("T"));
    assert_eq!(value(&g, "UserAvailability"), Some("AVAILABLE"));
    assert!(r.unwatched().is_empty());
    assert_eq!(r.ask(s, "<Logout-Request/>").await.code(), Some(200));
    assert_eq!(r.unwatched(), vec![watch_pair()]);
}

#[tokio::test]
async fn an_expired_session_ends_the_watch_and_a_refused_one_is_not_kept() {
    let (r, sid) = logged_in().await;
    let s = Some(sid.as_str());
    *r.fake.refuse_watch.lock().unwrap() = true;
    let a = r.about_jane(s, "SubscribePresence").await;
    assert_eq!(a.code(), Some(531), "no route: {}", a.raw);
    *r.fake.refuse_watch.lock().unwrap() = false;
    let a = r.about_jane(s, "SubscribePresence").await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    assert_eq!(r.watched(), vec![watch_pair()]);
    // Past the KeepAliveTime (600 s) the session ends, and the watch with it.
    r.server.expire(r.t0 + Duration::from_secs(3600));
    assert_eq!(r.unwatched(), vec![watch_pair()]);
}

#[tokio::test]
async fn foreign_watches_are_capped_per_watcher() {
    let (r, sid) = logged_in().await;
    let s = Some(sid.as_str());
    let get = |i: usize| {
        format!(
            "<GetPresence-Request>{}</GetPresence-Request>",
            user(&format!("wv:u{i}@otherdomain.test"))
        )
    };
    for i in 0..256 {
        assert_eq!(r.ask(s, &get(i)).await.code(), Some(200), "watch {i}");
    }
    let a = r.ask(s, &get(256)).await;
    assert_eq!(a.code(), Some(503), "{}", a.raw);
    assert_eq!(r.watched().len(), 256);
    // Watches already held are still answered.
    assert_eq!(r.ask(s, &get(0)).await.code(), Some(200));
}
