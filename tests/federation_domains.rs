//! `smsbridge run` with the simulated modem, domain `sms.test`, and
//! `otherdomain.test` a peer whose server is 127.0.0.2: no foreign address
//! becomes an SMS or reaches a local user of the same name (SIP and IMPS,
//! `sip:`, `wv:`, `+E.164@foreign`), each answered "no route" with the
//! reason; a softphone that writes the server's IP in the Request-URI still
//! reaches subscribers; a user of another domain is taken only from their
//! domain's server, reaches an IMPS user as `wv:jane@otherdomain.test`, may
//! watch a user who lists them, and reaches SMS-only subscribers only with
//! `foreign_to_sms`.

mod daemon_support;
mod imps_support;
mod sim_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use daemon_support::{Daemon, SipMsg, Ua, add_user, free_port, wait_sent, write_config};
use imps_support::{Answer, http_post, read, request, send};
use sim_support::{SimProcess, TempDir};

const SAM: &str = "+4915550200";
const CONTROL: &str = "+4915550300";
const PEER: &str = "127.0.0.2";

/// An IMPS session over HTTP.
struct Imps {
    addr: SocketAddr,
    sid: String,
}

fn post(addr: SocketAddr, body: &[u8]) -> Answer {
    let (status, _, body) = http_post(addr, "application/vnd.wv.csp+xml", body);
    read(status, &body)
}

impl Imps {
    fn login(addr: SocketAddr, user: &str, password: &str) -> Self {
        let a = post(
            addr,
            &request(
                None,
                &format!(
                    "<Login-Request><UserID>{user}</UserID><ClientID><URL>fed</URL></ClientID>\
                     <Password>{password}</Password></Login-Request>"
                ),
            ),
        );
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        let sid = a.text(&["SessionID"]).expect("SessionID").to_owned();
        Self { addr, sid }
    }

    fn ask(&self, primitive: &str) -> Answer {
        post(self.addr, &request(Some(&self.sid), primitive))
    }

    /// Polls until a server-initiated `name` comes.
    fn poll_for(&self, name: &str, limit: Duration) -> Option<Answer> {
        let t = Instant::now();
        while t.elapsed() < limit {
            let a = self.ask("<Polling-Request/>");
            if a.primitive.name == name {
                return Some(a);
            }
            if a.empty {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        None
    }
}

/// A daemon for `sms.test` with IMPS, `otherdomain.test` a peer at
/// 127.0.0.2, and `[federation] extra` keys; alice (SIP, with the contact
/// Sam, alias `sam`), erin (SIP) and harry (IMPS). A watcher a presentity
/// has not listed is refused (`[presence] default_policy = "block"`), so a
/// watch is refused until the presentity lists the watcher.
fn start(dir: &TempDir, sim: &SimProcess, federation: &str) -> (Daemon, SocketAddr) {
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        &format!(
            "[imps]\nlisten = \"{imps}\"\n\n[federation]\n{federation}\n\
             [[federation.domain]]\nname = \"otherdomain.test\"\naddresses = [\"{PEER}\"]\n\
             [presence]\ndefault_policy = \"block\"\n"
        ),
    );
    add_user(&config, "sip:alice@sms.test", "pa", &[(SAM, "Sam", "sam")]);
    add_user(&config, "sip:erin@sms.test", "pe", &[]);
    add_user(&config, "wv:harry@sms.test", "ph", &[]);
    let d = Daemon::start(dir.path(), config, db, sip, status);
    (d, imps)
}

/// The Warning text of a response.
fn warning(r: &SipMsg) -> &str {
    r.header("Warning").unwrap_or_default()
}

/// A UA for `user` (no password: another domain's user) sending from `ip`.
fn ua_from(ip: &str, user: &str, server: SocketAddr) -> Ua {
    let mut ua = Ua::new(user, "", server);
    ua.sock = UdpSocket::bind(format!("{ip}:0")).expect("bind on a loopback address");
    ua.sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    ua
}

#[test]
fn no_foreign_address_becomes_an_sms_or_reaches_a_local_user() {
    let dir = TempDir::new("fed-misroute");
    let sim = SimProcess::start(dir.path(), &["--send-delay", "100ms"]);
    let (d, imps) = start(&dir, &sim, "");
    let mut alice = Ua::new("sip:alice@sms.test", "pa", d.sip);
    assert_eq!(alice.register(300).status(), 200);
    let mut erin = Ua::new("sip:erin@sms.test", "pe", d.sip);

    // SIP: a local alias, a number and a local user's name, all at another
    // domain, with no route there.
    for (from_erin, uri) in [
        (false, "sip:sam@otherdomain.net".to_owned()),
        (false, format!("sip:{SAM}@otherdomain.net")),
        (true, "sip:alice@otherdomain.net".to_owned()),
    ] {
        let ua = if from_erin { &mut erin } else { &mut alice };
        let r = ua.message(&uri, "text/plain", "must not leave");
        assert_eq!(r.status(), 404, "{uri}: {r:?}\n{}", d.log());
        assert_eq!(
            warning(&r),
            format!("399 smsbridge \"no route to {uri}\""),
            "{uri}"
        );
    }

    // IMPS: a number and a local user's name at another domain.
    let harry = Imps::login(imps, "wv:harry@sms.test", "ph");
    for to in ["wv:+15550951@otherdomain.net", "wv:alice@otherdomain.net"] {
        let a = harry.ask(&send(to, "must not leave", false));
        assert_eq!(a.code(), Some(531), "{to}: {}", a.raw);
        let sip_form = format!("sip:{}", to.trim_start_matches("wv:"));
        assert_eq!(
            a.text(&["Result", "Description"]),
            Some(&*format!("no route to {sip_form}")),
            "{to}"
        );
    }

    // The controls: harry reaches alice by her own address, and a softphone
    // that knows the bridge by IP address reaches a subscriber. Each is the
    // first thing its receiver gets, so nothing above reached alice or
    // became an SMS.
    let a = harry.ask(&send("wv:alice@sms.test", "control", false));
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let m = alice
        .expect_request("MESSAGE", Duration::from_secs(30))
        .expect("the control IM");
    alice.answer(&m, 200, "OK");
    assert_eq!(m.body, "control", "{m:?}");
    assert!(
        m.header("From").is_some_and(|f| f.contains("sip:harry@")),
        "{m:?}"
    );
    let r = alice.message(
        &format!("sip:{CONTROL}@{}", d.sip.ip()),
        "text/plain",
        "by IP",
    );
    assert_eq!(r.status(), 202, "{r:?}");
    assert!(wait_sent(&sim, 1, Duration::from_secs(30)));
    let sent = sim.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].to.as_str(), sent[0].text.as_deref()),
        (CONTROL, Some("alice: by IP"))
    );
}

#[test]
fn another_domains_user_is_taken_only_from_its_server_and_keeps_its_address() {
    let dir = TempDir::new("fed-inbound");
    let sim = SimProcess::start(dir.path(), &[]);
    let (d, imps) = start(&dir, &sim, "");
    let harry = Imps::login(imps, "wv:harry@sms.test", "ph");

    // From anywhere but otherdomain.test's server: refused, not challenged.
    let mut stranger = ua_from("127.0.0.1", "sip:jane@otherdomain.test", d.sip);
    let r = stranger.message("sip:harry@sms.test", "text/plain", "hi");
    assert_eq!(r.status(), 403, "{r:?}");
    assert!(
        warning(&r).contains("accepted only from its configured servers"),
        "{r:?}"
    );
    // Not even as alice of another domain towards local alice's contacts.
    let mut fake_alice = ua_from("127.0.0.1", "sip:alice@otherdomain.test", d.sip);
    let r = fake_alice.message(&format!("sip:{SAM}@sms.test"), "text/plain", "hi");
    assert_eq!(r.status(), 403, "{r:?}");

    // From its server: harry gets it from wv:jane@otherdomain.test.
    let mut jane = ua_from(PEER, "sip:jane@otherdomain.test", d.sip);
    let r = jane.message("sip:harry@sms.test", "text/plain", "hello harry");
    assert_eq!(r.status(), 202, "{r:?}\n{}", d.log());
    let m = harry
        .poll_for("NewMessage", Duration::from_secs(30))
        .expect("NewMessage");
    assert_eq!(
        m.text(&["MessageInfo", "Sender", "User", "UserID"]),
        Some("wv:jane@otherdomain.test"),
        "{}",
        m.raw
    );
    assert_eq!(m.text(&["ContentData"]), Some("hello harry"));
    // And a SIP user gets it from sip:jane@otherdomain.test, not re-domained.
    let mut alice = Ua::new("sip:alice@sms.test", "pa", d.sip);
    assert_eq!(alice.register(300).status(), 200);
    let r = jane.message("sip:alice@sms.test", "text/plain", "hello alice");
    assert_eq!(r.status(), 202, "{r:?}");
    let m = alice
        .expect_request("MESSAGE", Duration::from_secs(30))
        .expect("MESSAGE");
    alice.answer(&m, 200, "OK");
    assert_eq!(m.body, "hello alice");
    assert_eq!(
        m.header("From")
            .and_then(|f| f.split(';').next())
            .map(str::trim),
        Some("<sip:jane@otherdomain.test>"),
        "{m:?}"
    );

    // An SMS-only subscriber: not by default. Another domain: never.
    let r = jane.message(&format!("sip:{SAM}@sms.test"), "text/plain", "hi");
    assert_eq!(r.status(), 403, "{r:?}");
    assert_eq!(
        warning(&r),
        format!("399 smsbridge \"{SAM} may not be reached from another domain\"")
    );
    let r = jane.message("sip:bob@thirddomain.test", "text/plain", "relay?");
    assert_eq!(r.status(), 403, "{r:?}");

    // Her watch of harry: refused until harry lists her, then allowed.
    let subscribe = |ua: &mut Ua| {
        ua.request(
            "SUBSCRIBE",
            "sip:harry@sms.test",
            &[("Event", "presence"), ("Expires", "60")],
            "",
        )
    };
    assert_eq!(subscribe(&mut jane).status(), 403);
    let a = harry.ask(
        "<CreateList-Request><ContactList>wv:harry/~Friends@sms.test</ContactList><NickList>\
         <NickName><Name>Jane</Name><UserID>wv:jane@otherdomain.test</UserID></NickName>\
         </NickList></CreateList-Request>",
    );
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let a = harry.ask(
        "<ListManage-Request><ContactList>wv:harry/~Friends@sms.test</ContactList>\
         <ReceiveList>T</ReceiveList></ListManage-Request>",
    );
    assert_eq!(
        a.text(&["NickList", "NickName", "UserID"]),
        Some("wv:jane@otherdomain.test"),
        "{}",
        a.raw
    );
    let r = subscribe(&mut jane);
    assert_eq!(r.status(), 200, "{r:?}\n{}", d.log());
    let n = jane
        .expect_request("NOTIFY", Duration::from_secs(10))
        .expect("NOTIFY");
    assert!(n.body.contains("entity=\"sip:harry@sms.test\""), "{n:?}");

    // A block of her address holds against her messages.
    let a = harry.ask(
        "<BlockEntity-Request><BlockList><AddList><UserID>wv:jane@otherdomain.test</UserID>\
         </AddList></BlockList></BlockEntity-Request>",
    );
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let r = jane.message("sip:harry@sms.test", "text/plain", "blocked?");
    assert_eq!(r.status(), 403, "{r:?}");

    assert_eq!(sim.sent().len(), 0, "{:?}", sim.sent());
}

#[test]
fn another_domains_user_reaches_subscribers_only_with_foreign_to_sms() {
    let dir = TempDir::new("fed-sms");
    let sim = SimProcess::start(dir.path(), &[]);
    let (d, _) = start(&dir, &sim, "foreign_to_sms = true\n");
    let mut jane = ua_from(PEER, "sip:jane@otherdomain.test", d.sip);
    let r = jane.message(&format!("sip:{SAM}@sms.test"), "text/plain", "hi sam");
    assert_eq!(r.status(), 202, "{r:?}\n{}", d.log());
    assert!(wait_sent(&sim, 1, Duration::from_secs(30)));
    let sent = sim.sent();
    assert_eq!(
        (sent[0].to.as_str(), sent[0].text.as_deref()),
        (SAM, Some("jane: hi sam"))
    );
    // The charging record names her.
    let cdr = daemon_support::cli(&d.config, &["cdr", "export", "--csv"], None);
    assert!(
        cdr.lines()
            .any(|l| l.contains("sip:jane@otherdomain.test") && l.contains(SAM)),
        "{cdr}\n{}",
        d.log()
    );
}

/// The README's federation example is a configuration that validates, with
/// the defaults it claims.
#[test]
fn readme_federation_example_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```toml\n[federation]")
        .expect("the federation example")
        + "```toml\n".len();
    let toml = &readme[start..start + readme[start..].find("```").unwrap()];
    let cfg = smsbridge::config::Config::parse(toml, std::path::Path::new("README.md"))
        .unwrap_or_else(|e| panic!("{e}"));
    cfg.validate().unwrap();
    let defaults = smsbridge::config::Federation::default();
    assert_eq!(
        (
            cfg.federation.foreign_to_users,
            cfg.federation.foreign_to_sms
        ),
        (defaults.foreign_to_users, defaults.foreign_to_sms)
    );
    assert_eq!(cfg.federation.domain[0].addresses, ["127.0.0.2"]);
}

/// In process, over the real bridge: an IMPS user's lists take users of
/// other domains by `wv:` or `sip:` address, show them as `wv:` with their
/// own domain, find them by nickname, remove them, and keep their blocks.
#[tokio::test]
async fn imps_lists_hold_users_of_other_domains() {
    let r = imps_support::rig();
    let sid = r.login("wv:alice@sms.test", "secret").await;
    let s = Some(sid.as_str());
    let a = r
        .ask(
            s,
            "<CreateList-Request><ContactList>wv:alice/~Friends@sms.test</ContactList><NickList>\
             <NickName><Name>Jane</Name><UserID>wv:jane@OtherDomain.test</UserID></NickName>\
             <NickName><Name>Joe</Name><UserID>sip:joe@otherdomain.test</UserID></NickName>\
             <NickName><Name>Dave</Name><UserID>wv:dave@sms.test</UserID></NickName>\
             </NickList></CreateList-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let manage = |body: &str| {
        format!(
            "<ListManage-Request><ContactList>wv:alice/~Friends@sms.test</ContactList>{body}\
             <ReceiveList>T</ReceiveList></ListManage-Request>"
        )
    };
    let ids = |a: &Answer| -> Vec<String> {
        a.primitive
            .at(&["NickList"])
            .map(|n| {
                n.children_named("NickName")
                    .filter_map(|n| n.text_at(&["UserID"]).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let a = r.ask(s, &manage("")).await;
    assert_eq!(
        ids(&a),
        [
            "wv:dave@sms.test",
            "wv:jane@otherdomain.test",
            "wv:joe@otherdomain.test"
        ],
        "{}",
        a.raw
    );
    // By nickname: Joe is sip:joe@otherdomain.test, with no route there.
    let a = r.ask(s, &send("Joe", "hi", false)).await;
    assert_eq!(a.code(), Some(531), "{}", a.raw);
    assert_eq!(
        a.text(&["Result", "Description"]),
        Some("no route to sip:joe@otherdomain.test")
    );
    let a = r
        .ask(
            s,
            &manage("<RemoveNickList><UserID>wv:jane@otherdomain.test</UserID></RemoveNickList>"),
        )
        .await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    assert!(!ids(&a).contains(&"wv:jane@otherdomain.test".to_owned()));
    let a = r
        .ask(
            s,
            "<BlockEntity-Request><BlockList><AddList><UserID>sip:joe@otherdomain.test</UserID>\
             </AddList></BlockList></BlockEntity-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let a = r
        .ask(
            s,
            "<DeleteList-Request><ContactList>wv:alice/~Friends@sms.test</ContactList></DeleteList-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let a = r.ask(s, "<GetBlockedList-Request/>").await;
    assert_eq!(
        a.text(&["BlockList", "EntityList", "UserID"]),
        Some("wv:joe@otherdomain.test"),
        "{}",
        a.raw
    );
    // Writing to a blocked user of another domain is refused as blocked.
    let a = r
        .ask(s, &send("sip:joe@otherdomain.test", "hi", false))
        .await;
    assert_eq!(a.code(), Some(532), "{}", a.raw);
}
