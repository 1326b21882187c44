//! `smsbridge run` as a process with the simulated modem on a PTY: an IMPS
//! client over HTTP logs in, adds an SMS-only contact, sees its SMS-only
//! presence, sends it a message that the simulator receives as SMS, gets the
//! echoed reply and the delivery report through polling, and blocks the
//! contact; an IMPS user and a SIP user (raw UA on UDP, and baresip) message
//! each other and see each other's presence pushed.

mod common;
mod daemon_support;
mod imps_support;
mod sim_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use daemon_support::{Daemon, SipMsg, Ua, add_user, free_port, start_baresip, write_config};
use imps_support::{Answer, http_post, read, request, send, user};
use sim_support::{SimProcess, TempDir, wait_for};

const BOB: &str = "+4915112345678";

fn post(addr: SocketAddr, body: &[u8]) -> Answer {
    let (status, _, body) = http_post(addr, "application/vnd.wv.csp+xml", body);
    read(status, &body)
}

/// A configuration with IMPS on a free loopback port and these users
/// (address, password): (config, db, SIP, status, IMPS).
fn imps_config(
    dir: &Path,
    sim: &SimProcess,
    users: &[(&str, &str)],
) -> (PathBuf, PathBuf, SocketAddr, SocketAddr, SocketAddr) {
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (config, db, sip, status) =
        write_config(dir, &[&sim.port], &format!("[imps]\nlisten = \"{imps}\"\n"));
    for (user, password) in users {
        add_user(&config, user, password, &[]);
    }
    (config, db, sip, status, imps)
}

/// Puts `contact` in `owner`'s default list (as a ListManage would), which
/// the owner's presence policy counts as allowing them.
fn lists(db: &Path, owner: &str, contact: &str, nick: &str) {
    let mut store = smsbridge::store::Store::open(db).unwrap();
    let o = store.user_by_address(owner).unwrap().unwrap();
    let c = store.user_by_address(contact).unwrap().unwrap();
    store
        .put_im_contact(
            o.id,
            c.id,
            Some(nick),
            smsbridge::store::DEFAULT_LIST,
            smsbridge::store::UnixTime::now(),
        )
        .unwrap();
}

/// A password Login-Request, as the answer came.
fn login(addr: SocketAddr, user: &str, password: &str) -> Answer {
    post(
        addr,
        &request(
            None,
            &format!(
                "<Login-Request><UserID>{user}</UserID><ClientID><URL>e2e</URL></ClientID><Password>{password}</Password></Login-Request>"
            ),
        ),
    )
}

struct Client {
    addr: SocketAddr,
    sid: String,
}

impl Client {
    /// The session a successful Login answer opened.
    fn of(addr: SocketAddr, login: &Answer) -> Client {
        let sid = login.text(&["SessionID"]).expect("SessionID").to_owned();
        Client { addr, sid }
    }

    fn ask(&self, primitive: &str) -> Answer {
        post(self.addr, &request(Some(&self.sid), primitive))
    }

    /// Polls until a server-initiated primitive named `name` comes (others are
    /// kept in `seen`).
    fn poll_for(&self, name: &str, seen: &mut Vec<Answer>, limit: Duration) -> Option<Answer> {
        imps_support::poll_for(|p| self.ask(p), name, seen, limit)
    }
}

#[test]
fn imps_client_talks_to_an_sms_only_contact_and_to_a_sip_user() {
    let dir = TempDir::new("imps-e2e");
    let sim = SimProcess::start(
        dir.path(),
        &[
            "--send-delay",
            "300ms",
            "--report-delay",
            "500ms",
            "--reply-delay",
            "700ms",
        ],
    );
    let (config, db, sip, status, imps) = imps_config(
        dir.path(),
        &sim,
        &[
            ("wv:alice@sms.test", "secret"),
            ("sip:erin@sms.test", "pw3"),
        ],
    );
    // Erin's policy lets alice see her: alice is in erin's list.
    lists(&db, "sip:erin@sms.test", "wv:alice@sms.test", "Alice");
    let daemon = Daemon::start(dir.path(), config, db, sip, status);

    let a = login(imps, "wv:alice@sms.test", "secret");
    assert_eq!(
        (a.http, a.code()),
        (200, Some(200)),
        "{}\n{}",
        a.raw,
        daemon.log()
    );
    let sid = a.text(&["SessionID"]).unwrap().to_owned();
    assert!(sid.len() >= 32, "≥128 random bits in hex: {sid}");
    let c = Client { addr: imps, sid };

    // Add the SMS-only contact to a new list.
    assert_eq!(c.ask("<CreateList-Request><ContactList>wv:alice/~Friends@sms.test</ContactList></CreateList-Request>").code(), Some(200));
    let add = format!(
        "<ListManage-Request><ContactList>wv:alice/~Friends@sms.test</ContactList><AddNickList><NickName>\
         <Name>Bob</Name><UserID>wv:{BOB}@sms.test</UserID></NickName></AddNickList><ReceiveList>T</ReceiveList></ListManage-Request>"
    );
    let a = c.ask(&add);
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    assert_eq!(a.text(&["NickList", "NickName", "Name"]), Some("Bob"));

    // Its presence is SMS-only.
    let a = c.ask(&format!(
        "<GetPresence-Request>{}</GetPresence-Request>",
        user("Bob")
    ));
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    imps_support::assert_sms_only_presence(&a, BOB);

    // A message that leaves as SMS, with a delivery report asked for.
    let a = c.ask(&send("Bob", "Hi Bob, lunch?", true));
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, daemon.log());
    let message_id = a.text(&["MessageID"]).unwrap().to_owned();
    assert!(
        daemon_support::wait_sent(&sim, 1, Duration::from_secs(30)),
        "{}",
        daemon.log()
    );
    let sent = sim.sent();
    assert_eq!(sent[0].to, BOB);
    assert!(
        sent[0].text.as_deref().unwrap().ends_with("Hi Bob, lunch?"),
        "{sent:?}"
    );

    // The echo comes back as NewMessage, the delivery report as DeliveryReport-Request.
    let mut seen = Vec::new();
    let nm = c
        .poll_for("NewMessage", &mut seen, Duration::from_secs(40))
        .unwrap_or_else(|| panic!("no NewMessage\n{}", daemon.log()));
    assert!(
        nm.text(&["ContentData"])
            .unwrap()
            .ends_with("Hi Bob, lunch?")
    );
    assert_eq!(
        nm.text(&["MessageInfo", "Sender", "User", "UserID"]),
        Some(&*format!("wv:{BOB}@sms.test"))
    );
    let ack = format!(
        "<MessageDelivered><MessageID>{}</MessageID></MessageDelivered>",
        nm.text(&["MessageInfo", "MessageID"]).unwrap()
    );
    assert_eq!(c.ask(&ack).code(), Some(200));
    let dr = c
        .poll_for("DeliveryReport-Request", &mut seen, Duration::from_secs(40))
        .unwrap_or_else(|| panic!("no DeliveryReport\n{}", daemon.log()));
    assert_eq!(dr.code(), Some(200));
    assert_eq!(
        dr.text(&["MessageInfo", "MessageID"]),
        Some(message_id.as_str())
    );

    // Block the contact: writing to it by mistake is refused.
    let block = format!(
        "<BlockEntity-Request><BlockList><AddList><UserID>wv:{BOB}@sms.test</UserID></AddList></BlockList></BlockEntity-Request>"
    );
    assert_eq!(c.ask(&block).code(), Some(200));
    assert_eq!(c.ask(&send("Bob", "oops", false)).code(), Some(532));
    let a = c.ask("<GetBlockedList-Request/>");
    assert_eq!(
        a.text(&["BlockList", "EntityList", "UserID"]),
        Some(&*format!("wv:{BOB}@sms.test"))
    );

    // IMPS ↔ SIP: erin registers; alice sees her online and writes to her.
    let mut erin = Ua::new("sip:erin@sms.test", "pw3", daemon.sip);
    assert_eq!(erin.register(600).status(), 200);
    let add_erin = "<ListManage-Request><ContactList>wv:alice/~Friends@sms.test</ContactList><AddNickList><NickName>\
                    <Name>Erin</Name><UserID>wv:erin@sms.test</UserID></NickName></AddNickList></ListManage-Request>";
    assert_eq!(c.ask(add_erin).code(), Some(200));
    let a = c.ask(&format!(
        "<GetPresence-Request>{}</GetPresence-Request>",
        user("wv:erin@sms.test")
    ));
    assert_eq!(
        a.text(&[
            "Presence",
            "PresenceSubList",
            "OnlineStatus",
            "PresenceValue"
        ]),
        Some("T"),
        "{}",
        a.raw
    );
    assert_eq!(
        c.ask(&send("wv:erin@sms.test", "hello erin", false)).code(),
        Some(200)
    );
    let m = erin
        .expect_request("MESSAGE", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no MESSAGE for erin\n{}", daemon.log()));
    assert_eq!(m.body, "hello erin");
    assert!(
        m.header("From").unwrap().contains("sip:alice@sms.test"),
        "{m:?}"
    );
    erin.answer(&m, 200, "OK");
    // And back: a MESSAGE to sip:alice@… reaches the IMPS user.
    let r = erin.message("sip:alice@sms.test", "text/plain;charset=UTF-8", "hi alice");
    // 200 when the session took it at once, 202 while it waits for the
    // client to confirm (RFC 3428 §7): durable either way.
    assert!([200, 202].contains(&r.status()), "{r:?}\n{}", daemon.log());
    let nm = c
        .poll_for("NewMessage", &mut seen, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no NewMessage from erin\n{}", daemon.log()));
    assert_eq!(nm.text(&["ContentData"]), Some("hi alice"));
    assert_eq!(
        nm.text(&["MessageInfo", "Sender", "User", "UserID"]),
        Some("wv:erin@sms.test")
    );

    assert_eq!(c.ask("<Logout-Request/>").code(), Some(200));
    assert_eq!(c.ask("<Polling-Request/>").code(), Some(604));
}

/// The next NOTIFY `ua` gets (within 10 s), answered 200.
fn notified(ua: &Ua, what: &str) -> SipMsg {
    let n = ua
        .expect_request("NOTIFY", Duration::from_secs(10))
        .expect(what);
    ua.answer(&n, 200, "OK");
    n
}

/// A SIP watcher sees an IMPS user of the bridge as PIDF: `closed` while they
/// are logged out, `open` once they logged in, each change pushed as a NOTIFY;
/// only when the IMPS user is in the watcher's lists.
#[test]
fn sip_watchers_see_imps_users_as_pidf() {
    let dir = TempDir::new("imps-pidf");
    let sim = SimProcess::start(dir.path(), &[]);
    let (config, db, sip, status, imps) = imps_config(
        dir.path(),
        &sim,
        &[
            ("wv:erin@sms.test", "pw-erin"),
            ("sip:alice@sms.test", "secret"),
            ("sip:mallory@sms.test", "pw-m"),
        ],
    );
    {
        // alice has erin in her list (as an IMPS client's ListManage would put her).
        let mut store = smsbridge::store::Store::open(&db).unwrap();
        let a = store
            .user_by_address("sip:alice@sms.test")
            .unwrap()
            .unwrap();
        let e = store.user_by_address("wv:erin@sms.test").unwrap().unwrap();
        store
            .put_im_contact(
                a.id,
                e.id,
                Some("Erin"),
                smsbridge::store::DEFAULT_LIST,
                smsbridge::store::UnixTime::now(),
            )
            .unwrap();
        // …and erin has alice in hers and blocks mallory: erin's policy
        // lets alice see her, and not mallory.
        store
            .put_im_contact(
                e.id,
                a.id,
                Some("Alice"),
                smsbridge::store::DEFAULT_LIST,
                smsbridge::store::UnixTime::now(),
            )
            .unwrap();
        let m = store
            .user_by_address("sip:mallory@sms.test")
            .unwrap()
            .unwrap();
        store
            .block_im_user(e.id, m.id, true, smsbridge::store::UnixTime::now())
            .unwrap();
    }
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let mut alice = Ua::new("sip:alice@sms.test", "secret", sip);
    let subscribe = |ua: &mut Ua| {
        ua.request(
            "SUBSCRIBE",
            "sip:erin@sms.test",
            &[
                ("Event", "presence"),
                ("Accept", "application/pidf+xml"),
                ("Expires", "600"),
            ],
            "",
        )
    };
    let r = subscribe(&mut alice);
    assert_eq!(r.status(), 200, "{r:?}\n{}", daemon.log());
    let n = notified(&alice, "NOTIFY");
    assert!(
        n.body.contains("entity=\"sip:erin@sms.test\""),
        "{}",
        n.body
    );
    assert!(n.body.contains("<basic>closed</basic>"), "{}", n.body);

    let a = login(imps, "wv:erin@sms.test", "pw-erin");
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    // The login is pushed in the existing dialog, without a new SUBSCRIBE.
    let n = notified(&alice, "NOTIFY pushed on login");
    assert!(n.body.contains("<basic>open</basic>"), "{}", n.body);
    // A refreshing SUBSCRIBE gets the current state too.
    let r = subscribe(&mut alice);
    assert_eq!(r.status(), 200);
    let n = notified(&alice, "NOTIFY");
    assert!(n.body.contains("<basic>open</basic>"), "{}", n.body);

    // UpdatePresence reaches the SIP watcher as RPID and notes, not only
    // open/closed.
    let c = Client::of(imps, &a);
    let upd = "<UpdatePresence-Request><PresenceSubList><UserAvailability><Qualifier>T</Qualifier>\
               <PresenceValue>DISCREET</PresenceValue></UserAvailability><StatusText><Qualifier>T</Qualifier>\
               <PresenceValue>at lunch</PresenceValue></StatusText></PresenceSubList></UpdatePresence-Request>";
    assert_eq!(c.ask(upd).code(), Some(200));
    let n = notified(&alice, "NOTIFY pushed on UpdatePresence");
    for part in [
        "<basic>open</basic>",
        "<rpid:activities><rpid:busy/></rpid:activities>",
        "<dm:note>at lunch</dm:note>",
        "<note>at lunch</note>",
    ] {
        assert!(n.body.contains(part), "{part} not in {}", n.body);
    }
    // A new SUBSCRIBE gets it at once.
    let r = subscribe(&mut alice);
    assert_eq!(r.status(), 200);
    let n = notified(&alice, "NOTIFY");
    assert!(n.body.contains("<dm:note>at lunch</dm:note>"), "{}", n.body);

    // Blocked by erin: no watching.
    let mut mallory = Ua::new("sip:mallory@sms.test", "pw-m", sip);
    assert_eq!(subscribe(&mut mallory).status(), 403);
}

/// An IMPS client subscribed to a SIP user's presence is pushed
/// `OnlineStatus` T when that user registers and F when the registration is
/// removed (REGISTER with Expires: 0).
#[test]
fn imps_watchers_are_pushed_sip_registrations() {
    let dir = TempDir::new("imps-sip-presence");
    let sim = SimProcess::start(dir.path(), &[]);
    let (config, db, sip, status, imps) = imps_config(
        dir.path(),
        &sim,
        &[
            ("wv:alice@sms.test", "secret"),
            ("sip:erin@sms.test", "pw3"),
        ],
    );
    // Erin's policy lets alice see her: alice is in erin's list.
    lists(&db, "sip:erin@sms.test", "wv:alice@sms.test", "Alice");
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let a = login(imps, "wv:alice@sms.test", "secret");
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, daemon.log());
    let c = Client::of(imps, &a);
    assert_eq!(c.ask("<CreateList-Request><ContactList>wv:alice/~Friends@sms.test</ContactList></CreateList-Request>").code(), Some(200));
    let add_erin = "<ListManage-Request><ContactList>wv:alice/~Friends@sms.test</ContactList><AddNickList><NickName>\
                    <Name>Erin</Name><UserID>wv:erin@sms.test</UserID></NickName></AddNickList></ListManage-Request>";
    assert_eq!(c.ask(add_erin).code(), Some(200));
    let a = c.ask(&format!(
        "<SubscribePresence-Request>{}</SubscribePresence-Request>",
        user("wv:erin@sms.test")
    ));
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let online = |a: &Answer| {
        a.text(&[
            "Presence",
            "PresenceSubList",
            "OnlineStatus",
            "PresenceValue",
        ])
        .map(str::to_owned)
    };
    let mut seen = Vec::new();
    let limit = Duration::from_secs(10);
    let n = c
        .poll_for("PresenceNotification-Request", &mut seen, limit)
        .expect("initial notification");
    assert_eq!(online(&n).as_deref(), Some("F"), "{}", n.raw);

    let mut erin = Ua::new("sip:erin@sms.test", "pw3", daemon.sip);
    assert_eq!(erin.register(600).status(), 200);
    let n = c
        .poll_for("PresenceNotification-Request", &mut seen, limit)
        .expect("pushed on REGISTER");
    assert_eq!(
        n.text(&["Presence", "UserID"]),
        Some("wv:erin@sms.test"),
        "{}",
        n.raw
    );
    assert_eq!(online(&n).as_deref(), Some("T"), "{}", n.raw);

    // Her PUBLISH (RFC 3903) says more than the registration.
    let doc = "<?xml version=\"1.0\"?><presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
               xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
               xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:erin@sms.test\">\
               <tuple id=\"t\"><status><basic>open</basic></status></tuple>\
               <dm:person id=\"p\"><rpid:activities><rpid:away/></rpid:activities>\
               <dm:note>back at 3</dm:note></dm:person></presence>";
    let r = erin.request(
        "PUBLISH",
        "sip:erin@sms.test",
        &[
            ("Event", "presence"),
            ("Expires", "600"),
            ("Content-Type", "application/pidf+xml"),
        ],
        doc,
    );
    assert_eq!(r.status(), 200, "{r:?}");
    let etag = r.header("SIP-ETag").expect("SIP-ETag").to_owned();
    let n = c
        .poll_for("PresenceNotification-Request", &mut seen, limit)
        .expect("pushed on PUBLISH");
    let value = |a: &Answer, name: &str| {
        a.text(&["Presence", "PresenceSubList", name, "PresenceValue"])
            .map(str::to_owned)
    };
    assert_eq!(online(&n).as_deref(), Some("T"), "{}", n.raw);
    assert_eq!(
        value(&n, "UserAvailability").as_deref(),
        Some("NOT_AVAILABLE"),
        "{}",
        n.raw
    );
    assert_eq!(
        value(&n, "StatusText").as_deref(),
        Some("back at 3"),
        "{}",
        n.raw
    );
    let r = erin.request(
        "PUBLISH",
        "sip:erin@sms.test",
        &[
            ("Event", "presence"),
            ("Expires", "0"),
            ("SIP-If-Match", &etag),
        ],
        "",
    );
    assert_eq!(r.status(), 200, "{r:?}");
    let n = c
        .poll_for("PresenceNotification-Request", &mut seen, limit)
        .expect("pushed on the removal");
    assert_eq!(
        value(&n, "StatusText"),
        None,
        "back to the registration: {}",
        n.raw
    );

    assert_eq!(erin.register(0).status(), 200);
    let n = c
        .poll_for("PresenceNotification-Request", &mut seen, limit)
        .expect("pushed on un-REGISTER");
    assert_eq!(online(&n).as_deref(), Some("F"), "{}", n.raw);
}

/// baresip (a real softphone, Debian `baresip-core`) registered as a SIP user
/// and an IMPS client on the same bridge message each other.
#[test]
fn imps_user_and_baresip_exchange_messages() {
    if !common::peer_available(
        "baresip",
        "apt-get install baresip-core",
        common::command_succeeds("sh", &["-c", "command -v baresip"]),
    ) {
        return;
    }
    let dir = TempDir::new("imps-baresip");
    let sim = SimProcess::start(dir.path(), &[]);
    let (config, db, sip, status, imps) = imps_config(
        dir.path(),
        &sim,
        &[
            ("wv:erin@sms.test", "pw-erin"),
            ("sip:alice@sms.test", "secret"),
        ],
    );
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let a = login(imps, "wv:erin@sms.test", "pw-erin");
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, daemon.log());
    let c = Client::of(imps, &a);

    let (mut child, log) = start_baresip(
        dir.path(),
        sip,
        "sip:alice@sms.test",
        "secret",
        "\"Erin\" <sip:erin@sms.test>",
        &["/contact_next", "/message hello from baresip"],
        12,
    );

    let mut seen = Vec::new();
    let nm = c
        .poll_for("NewMessage", &mut seen, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no NewMessage from baresip\n{}", daemon.log()));
    assert_eq!(
        nm.text(&["ContentData"]),
        Some("hello from baresip"),
        "{}",
        nm.raw
    );
    assert_eq!(
        nm.text(&["MessageInfo", "Sender", "User", "UserID"]),
        Some("wv:alice@sms.test"),
        "{}",
        nm.raw
    );
    // And back, while baresip is still registered.
    let a = c.ask(&send("wv:alice@sms.test", "hi baresip", false));
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, daemon.log());
    let _ = wait_for(&mut child, Duration::from_secs(20));
    let trace = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        trace.contains("MESSAGE sip:alice-"),
        "baresip got no MESSAGE:\n{trace}\n{}",
        daemon.log()
    );
    assert!(
        trace.contains("Content-Length: 10\r\n\r\nhi baresip"),
        "{trace}"
    );
    // The MESSAGE baresip received comes from the IMPS user's SIP identity.
    let got = &trace[trace.find("MESSAGE sip:alice-").unwrap()..];
    let from = got
        .lines()
        .find(|l| l.starts_with("From:"))
        .unwrap_or_default();
    assert!(from.contains("<sip:erin@sms.test>"), "{got}");
}

/// After STOP, an SMS-only subscriber is shown unavailable to IMPS
/// watchers, with the reason in the status text.
#[test]
fn an_opted_out_subscriber_is_unavailable_to_imps_watchers() {
    let dir = TempDir::new("imps-opt-out");
    let sim = SimProcess::start(dir.path(), &[]);
    let (config, db, sip, status, imps) =
        imps_config(dir.path(), &sim, &[("wv:alice@sms.test", "secret")]);
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let a = login(imps, "wv:alice@sms.test", "secret");
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let c = Client {
        addr: imps,
        sid: a.text(&["SessionID"]).unwrap().to_owned(),
    };
    assert_eq!(c.ask("<CreateList-Request><ContactList>wv:alice/~Friends@sms.test</ContactList></CreateList-Request>").code(), Some(200));
    let add = format!(
        "<ListManage-Request><ContactList>wv:alice/~Friends@sms.test</ContactList><AddNickList><NickName>\
         <Name>Bob</Name><UserID>wv:{BOB}@sms.test</UserID></NickName></AddNickList><ReceiveList>T</ReceiveList></ListManage-Request>"
    );
    assert_eq!(c.ask(&add).code(), Some(200));
    let r = sim.ask(&smsbridge::sim::ControlRequest::Inject {
        from: BOB.into(),
        text: "STOP".into(),
        order: None,
    });
    assert!(r.ok, "{r:?}");
    let value = |a: &Answer, attr: &str| {
        a.text(&["Presence", "PresenceSubList", attr, "PresenceValue"])
            .map(str::to_owned)
    };
    // The STOP is taken when the modem reads it: ask until the text says so.
    let t = Instant::now();
    let shown = loop {
        let a = c.ask(&format!(
            "<GetPresence-Request>{}</GetPresence-Request>",
            user("Bob")
        ));
        if value(&a, "StatusText").is_some_and(|t| t.contains("opted out")) {
            break a;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never shown opted out: {}\n{}",
            a.raw,
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        value(&shown, "OnlineStatus").as_deref(),
        Some("F"),
        "{}",
        shown.raw
    );
    assert_eq!(
        value(&shown, "UserAvailability").as_deref(),
        Some("NOT_AVAILABLE"),
        "{}",
        shown.raw
    );
}
