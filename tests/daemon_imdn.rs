//! Delivery notifications between users of the bridge, end to end with the
//! daemon as a process and raw SIP user agents on UDP: an IM to a user who
//! is offline at send time is stored (202), delivered on REGISTER once with
//! its CPIM envelope, and its sender gets exactly one IMDN `delivered`, then
//! the recipient's `displayed`; an IM to a user who is online is answered
//! 200; a forged report changes nothing.

mod daemon_support;
mod imps_support;
mod sim_support;

use std::net::SocketAddr;
use std::time::Duration;

use daemon_support::{
    DOMAIN, Daemon, SipMsg, Ua, add_user, cpim, free_port, next_imdn, write_config,
};
use imps_support::{Answer, http_post, read, request, send};
use sim_support::{SimProcess, TempDir};

struct Setup {
    _dir: TempDir,
    _sim: SimProcess,
    daemon: Daemon,
}

fn setup(name: &str) -> Setup {
    setup_with(name, "").0
}

/// SIP users alice, bob and carol, and with `imps_listen` an IMPS listener
/// and the IMPS users harry (password `pw-harry`) and ivy (`pw-ivy`).
fn setup_with(name: &str, imps_listen: &str) -> (Setup, Option<SocketAddr>) {
    let dir = TempDir::new(name);
    let sim = SimProcess::start(dir.path(), &[]);
    let imps = (!imps_listen.is_empty()).then(|| {
        format!("{imps_listen}:{}", free_port())
            .parse::<SocketAddr>()
            .expect("address")
    });
    let extra = imps.map_or(String::new(), |a| format!("[imps]\nlisten = \"{a}\"\n"));
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], &extra);
    for user in ["alice", "bob", "carol"] {
        add_user(&config, &format!("sip:{user}@{DOMAIN}"), "secret", &[]);
    }
    if imps.is_some() {
        add_user(&config, &format!("wv:harry@{DOMAIN}"), "pw-harry", &[]);
        add_user(&config, &format!("wv:ivy@{DOMAIN}"), "pw-ivy", &[]);
    }
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let s = Setup {
        _dir: dir,
        _sim: sim,
        daemon,
    };
    (s, imps)
}

/// [`setup_with`] IMPS, and harry logged in.
fn with_harry(name: &str) -> (Setup, Client) {
    let (s, imps) = setup_with(name, "127.0.0.1");
    let addr = imps.expect("IMPS");
    let harry = Client::login(addr, &format!("wv:harry@{DOMAIN}"), "pw-harry");
    (s, harry)
}

/// `ua` answers the next MESSAGE 200 on another thread, and hands it back.
fn answer_one(ua: Ua) -> std::thread::JoinHandle<SipMsg> {
    std::thread::spawn(move || {
        let m = ua
            .expect_request("MESSAGE", Duration::from_secs(20))
            .expect("the IM");
        ua.answer(&m, 200, "OK");
        m
    })
}

/// An IMPS client session over HTTP.
struct Client {
    addr: SocketAddr,
    sid: String,
}

impl Client {
    fn login(addr: SocketAddr, user: &str, password: &str) -> Self {
        let a = Self::post(
            addr,
            None,
            &format!(
                "<Login-Request><UserID>{user}</UserID><ClientID><URL>imdn</URL></ClientID>\
                 <Password>{password}</Password></Login-Request>"
            ),
        );
        assert_eq!(a.code(), Some(200), "{}", a.raw);
        let sid = a.text(&["SessionID"]).expect("SessionID").to_owned();
        Self { addr, sid }
    }

    fn post(addr: SocketAddr, sid: Option<&str>, primitive: &str) -> Answer {
        let (status, _, body) =
            http_post(addr, "application/vnd.wv.csp+xml", &request(sid, primitive));
        read(status, &body)
    }

    fn ask(&self, primitive: &str) -> Answer {
        Self::post(self.addr, Some(&self.sid), primitive)
    }

    /// Polls until a server-initiated primitive named `name` comes; others
    /// are skipped.
    fn poll_for(&self, name: &str, limit: Duration) -> Option<Answer> {
        imps_support::poll_for(|p| self.ask(p), name, &mut Vec::new(), limit)
    }
}

/// `client` polls one `DeliveryReport-Request`: delivered (200), about
/// message `id`, naming the recipient `wv:<user>@sms.test`.
fn assert_delivery_report(client: &Client, s: &Setup, id: &str, user: &str) {
    let r = client
        .poll_for("DeliveryReport-Request", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no DeliveryReport\n{}", s.daemon.log()));
    assert_eq!(r.code(), Some(200), "{}", r.raw);
    assert_eq!(r.text(&["MessageInfo", "MessageID"]), Some(id), "{}", r.raw);
    assert_eq!(
        r.text(&["MessageInfo", "Recipient", "User", "UserID"]),
        Some(format!("wv:{user}@{DOMAIN}").as_str()),
        "{}",
        r.raw
    );
}

fn ua(s: &Setup, user: &str) -> Ua {
    Ua::new(&format!("sip:{user}@{DOMAIN}"), "secret", s.daemon.sip)
}

/// The IMDN document a client sends or gets: `kind` `display` or
/// `delivery`.
fn imdn_xml(id: &str, recipient: Option<&str>, kind: &str, status: &str) -> String {
    let recipient = recipient
        .map(|r| format!("<recipient-uri>{r}</recipient-uri>"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">\
         <message-id>{id}</message-id><datetime>2026-11-21T08:00:05Z</datetime>{recipient}\
         <{kind}-notification><status><{status}/></status></{kind}-notification></imdn>"
    )
}

/// A client's IMDN from `from` to `to` as a CPIM MESSAGE body.
fn client_imdn(from: &str, to: &str, id: &str) -> String {
    format!(
        "From: <sip:{from}@{DOMAIN}>\r\nTo: <sip:{to}@{DOMAIN}>\r\n\
         NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: d-{id}\r\n\
         DateTime: 2026-11-21T08:00:05Z\r\n\r\nContent-Type: message/imdn+xml\r\n\
         Content-Disposition: notification\r\n\r\n{}",
        imdn_xml(id, None, "display", "displayed")
    )
}

/// The XML of an IMDN MESSAGE (inside its CPIM wrapper).
fn xml_of(m: &SipMsg) -> &str {
    let start = m.body.find("<?xml").expect("an XML document");
    &m.body[start..]
}

/// The next IMDN `ua` gets says IM `id` was delivered to `user`, from them.
fn assert_delivered_imdn(ua: &Ua, user: &str, id: &str) {
    let n = next_imdn(ua);
    let from = n.header("From").unwrap_or_default();
    assert!(from.contains(&format!("<sip:{user}@{DOMAIN}>")), "{n:?}");
    let xml = xml_of(&n);
    assert!(
        xml.contains(&format!("<message-id>{id}</message-id>")),
        "{xml}"
    );
    assert!(
        xml.contains(&format!(
            "<recipient-uri>sip:{user}@{DOMAIN}</recipient-uri>"
        )),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<delivery-notification><status><delivered/></status></delivery-notification>"
        ),
        "{xml}"
    );
}

/// The notice rows (disposition, owed to, about) in the daemon's database.
fn notice_rows(s: &Setup) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(&s.daemon.db).expect("open db");
    let mut stmt = conn
        .prepare(
            "SELECT n.disposition, u.sip_aor, n.origin FROM inbound n JOIN users u ON u.id = n.user_id \
             WHERE n.kind = 'notice' ORDER BY n.id",
        )
        .expect("query");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn offline_at_send_time_stored_then_delivered_on_register_with_one_imdn_each() {
    let s = setup("imdn-offline");
    let (mut alice, mut bob, mut carol) = (ua(&s, "alice"), ua(&s, "bob"), ua(&s, "carol"));
    assert_eq!(alice.register(600).status(), 200);
    let to_bob = format!("sip:bob@{DOMAIN}");
    let r = alice.message(&to_bob, "message/cpim", &cpim(&to_bob, "im-42", "Hi Bob"));
    assert_eq!(
        r.status(),
        202,
        "stored, not delivered: {r:?}\n{}",
        s.daemon.log()
    );

    // Bob comes online: the IM arrives once, with its envelope, asking for
    // a display notification only.
    assert_eq!(bob.register(600).status(), 200);
    let m = bob
        .expect_request("MESSAGE", Duration::from_secs(30))
        .expect("the stored IM");
    bob.answer(&m, 200, "OK");
    assert_eq!(m.header("Content-Type"), Some("message/cpim"), "{m:?}");
    assert!(
        m.header("From")
            .unwrap()
            .contains(&format!("<sip:alice@{DOMAIN}>"))
    );
    assert!(m.body.contains("imdn.Message-ID: im-42\r\n"), "{}", m.body);
    assert!(
        m.body
            .contains("imdn.Disposition-Notification: display\r\n"),
        "{}",
        m.body
    );
    assert!(!m.body.contains("positive-delivery"), "{}", m.body);
    assert!(m.body.ends_with("\r\n\r\nHi Bob"), "{}", m.body);

    // Alice hears it was delivered, from bob.
    assert_delivered_imdn(&alice, "bob", "im-42");

    // A forged report (carol never got im-42) is refused; bob's display
    // goes to alice, once however often bob sends it.
    let alice_uri = format!("sip:alice@{DOMAIN}");
    let forged = carol.message(
        &alice_uri,
        "message/cpim",
        &client_imdn("carol", "alice", "im-42"),
    );
    assert_eq!(forged.status(), 404, "{forged:?}");
    let unknown = bob.message(
        &alice_uri,
        "message/cpim",
        &client_imdn("bob", "alice", "im-99"),
    );
    assert_eq!(unknown.status(), 404, "{unknown:?}");
    for _ in 0..2 {
        let r = bob.message(
            &alice_uri,
            "message/cpim",
            &client_imdn("bob", "alice", "im-42"),
        );
        assert_eq!(r.status(), 200, "{r:?}");
    }
    // The next IMDN alice gets is the display (no second `delivered`).
    let d = next_imdn(&alice);
    let xml = xml_of(&d);
    assert!(xml.contains("<message-id>im-42</message-id>"), "{xml}");
    assert!(
        xml.contains("<display-notification><status><displayed/></status></display-notification>"),
        "{xml}"
    );
    let bob_aor = format!("sip:bob@{DOMAIN}");
    assert_eq!(
        notice_rows(&s),
        [
            ("delivered".to_owned(), alice_uri.clone(), bob_aor.clone()),
            ("displayed".to_owned(), alice_uri, bob_aor),
        ]
    );
    // The IM row: tried once while bob was away, then delivered once.
    let conn = rusqlite::Connection::open(&s.daemon.db).expect("open db");
    let row: (String, i64, String) = conn
        .query_row(
            "SELECT state, attempts, im_message_id FROM inbound WHERE kind = 'message'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("one IM row");
    assert_eq!(row, ("delivered".to_owned(), 2, "im-42".to_owned()));
}

#[test]
fn online_recipient_gets_it_inline_and_the_sender_gets_200_and_the_imdn() {
    let s = setup("imdn-online");
    let (mut alice, mut bob) = (ua(&s, "alice"), ua(&s, "bob"));
    assert_eq!(alice.register(600).status(), 200);
    assert_eq!(bob.register(600).status(), 200);
    let answering = answer_one(bob);
    let to_bob = format!("sip:bob@{DOMAIN}");
    let r = alice.message(&to_bob, "message/cpim", &cpim(&to_bob, "im-7", "Now?"));
    assert_eq!(
        r.status(),
        200,
        "delivered at once: {r:?}\n{}",
        s.daemon.log()
    );
    let m = answering.join().expect("bob");
    assert!(m.body.contains("imdn.Message-ID: im-7\r\n"), "{}", m.body);
    assert_delivered_imdn(&alice, "bob", "im-7");
}

#[test]
fn imps_sender_with_delivery_report_gets_it_from_a_sip_recipient() {
    let (s, harry) = with_harry("imdn-imps-to-sip");
    let mut bob = ua(&s, "bob");
    assert_eq!(bob.register(600).status(), 200);
    let answering = answer_one(bob);
    let a = harry.ask(&send(&format!("wv:bob@{DOMAIN}"), "Hi from IMPS", true));
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, s.daemon.log());
    let id = a.text(&["MessageID"]).expect("MessageID").to_owned();
    let m = answering.join().expect("bob");
    assert_eq!(m.header("Content-Type"), Some("message/cpim"), "{m:?}");
    assert!(
        m.header("From")
            .unwrap()
            .contains(&format!("<sip:harry@{DOMAIN}>"))
    );
    assert!(
        m.body.contains(&format!("imdn.Message-ID: {id}\r\n")),
        "{}",
        m.body
    );
    assert_delivery_report(&harry, &s, &id, "bob");
}

#[test]
fn sip_sender_gets_the_imdn_once_the_imps_client_has_the_message() {
    let (s, harry) = with_harry("imdn-sip-to-imps");
    let mut alice = ua(&s, "alice");
    assert_eq!(alice.register(600).status(), 200);
    let to_harry = format!("sip:harry@{DOMAIN}");
    let r = alice.message(
        &to_harry,
        "message/cpim",
        &cpim(&to_harry, "im-h1", "Hi Harry"),
    );
    // Taken by the session at once (200), or kept until the client
    // confirms (202): either way it is durable.
    assert!(
        [200, 202].contains(&r.status()),
        "{r:?}\n{}",
        s.daemon.log()
    );
    let nm = harry
        .poll_for("NewMessage", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no NewMessage\n{}", s.daemon.log()));
    assert_eq!(nm.text(&["ContentData"]), Some("Hi Harry"), "{}", nm.raw);
    let mid = nm
        .text(&["MessageInfo", "MessageID"])
        .expect("MessageID")
        .to_owned();
    let ack = harry.ask(&format!(
        "<MessageDelivered><MessageID>{mid}</MessageID></MessageDelivered>"
    ));
    assert_eq!(ack.code(), Some(200), "{}", ack.raw);
    assert_delivered_imdn(&alice, "harry", "im-h1");
}

/// IMPS to IMPS: harry asks for a delivery report of a message to ivy, who
/// is not logged in; it is kept, and once ivy logs in and confirms it
/// (`MessageDelivered`) harry's next poll brings one `DeliveryReport-Request`
/// naming ivy.
#[test]
fn imps_sender_gets_the_delivery_report_once_the_imps_recipient_has_it() {
    let (s, harry) = with_harry("imdn-imps-to-imps");
    let a = harry.ask(&send(&format!("wv:ivy@{DOMAIN}"), "Hi Ivy", true));
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, s.daemon.log());
    let id = a.text(&["MessageID"]).expect("MessageID").to_owned();
    let ivy = Client::login(harry.addr, &format!("wv:ivy@{DOMAIN}"), "pw-ivy");
    let nm = ivy
        .poll_for("NewMessage", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no NewMessage for ivy\n{}", s.daemon.log()));
    assert_eq!(nm.text(&["ContentData"]), Some("Hi Ivy"), "{}", nm.raw);
    let mid = nm
        .text(&["MessageInfo", "MessageID"])
        .expect("MessageID")
        .to_owned();
    let ack = ivy.ask(&format!(
        "<MessageDelivered><MessageID>{mid}</MessageID></MessageDelivered>"
    ));
    assert_eq!(ack.code(), Some(200), "{}", ack.raw);
    assert_delivery_report(&harry, &s, &id, "ivy");
    assert!(
        harry
            .poll_for("DeliveryReport-Request", Duration::from_secs(3))
            .is_none(),
        "one report"
    );
}
