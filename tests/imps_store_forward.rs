//! IMPS store and forward that loses nothing, with `smsbridge run` as a
//! process and the simulated phone: an SMS for a logged-in IMPS user whose
//! client never polls stays pending through the session's expiry and a
//! SIGKILL of the daemon, and the next Login gets it (same MessageID scheme,
//! confirmed with MessageDelivered, then `delivered` in SQLite). A message
//! confirmed in the first session is not offered again.

mod common;
mod daemon_support;
mod imps_support;
mod sim_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use daemon_support::{Daemon, add_user, free_port, write_config};
use imps_support::{Answer, http_post, read, request};
use sim_support::{SimProcess, TempDir, eventually};
use smsbridge::sim::ControlRequest;

const BOB: &str = "+4915112345678";
const ALICE: &str = "wv:alice@sms.test";
/// Bounds for what the daemon does on its own.
const LIMIT: Duration = Duration::from_secs(40);

/// One IMPS session over HTTP.
struct Session {
    addr: SocketAddr,
    sid: String,
}

impl Session {
    /// A password Login of alice asking for a `ttl`-second TimeToLive.
    fn login(addr: SocketAddr, ttl: u32) -> (Session, Answer) {
        let a = ask(
            addr,
            None,
            &format!(
                "<Login-Request><UserID>{ALICE}</UserID><ClientID><URL>sf</URL></ClientID>\
                 <Password>secret</Password><TimeToLive>{ttl}</TimeToLive></Login-Request>"
            ),
        );
        let sid = a.text(&["SessionID"]).unwrap_or_default().to_owned();
        (Session { addr, sid }, a)
    }

    fn ask(&self, primitive: &str) -> Answer {
        ask(self.addr, Some(&self.sid), primitive)
    }

    /// Polls until a NewMessage comes, answering nothing else.
    fn next_new_message(&self) -> Option<Answer> {
        let t = Instant::now();
        while t.elapsed() < LIMIT {
            let a = self.ask("<Polling-Request/>");
            if a.primitive.name == "NewMessage" {
                return Some(a);
            }
            if a.empty {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        None
    }

    fn delivered(&self, message_id: &str) -> Answer {
        self.ask(&format!(
            "<MessageDelivered><MessageID>{message_id}</MessageID></MessageDelivered>"
        ))
    }
}

fn ask(addr: SocketAddr, sid: Option<&str>, primitive: &str) -> Answer {
    let (status, _, body) = http_post(addr, "application/vnd.wv.csp+xml", &request(sid, primitive));
    read(status, &body)
}

/// A daemon whose IMPS sessions may be as short as a second, with alice
/// (IMPS) who has Bob as a contact, so his SMS are hers.
fn setup(dir: &Path, sim: &SimProcess) -> (Daemon, SocketAddr) {
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (config, db, sip, status) = write_config(
        dir,
        &[&sim.port],
        &format!("[imps]\nlisten = \"{imps}\"\nmin_keep_alive = \"1s\"\n"),
    );
    add_user(&config, ALICE, "secret", &[(BOB, "Bob", "bob")]);
    (Daemon::start(dir, config, db, sip, status), imps)
}

fn restart(old: &Daemon) -> Daemon {
    Daemon::start(
        &old.dir,
        old.config.clone(),
        old.db.clone(),
        old.sip,
        old.status,
    )
}

fn from_bob(sim: &SimProcess, text: &str) {
    let r = sim.ask(&ControlRequest::Inject {
        from: BOB.into(),
        text: text.into(),
        order: None,
    });
    assert!(r.ok, "{r:?}");
}

/// The inbound row of the SMS with `text`: (id, state, offered_at, delivered_at).
fn row(db: &Path, text: &str) -> Option<(i64, String, Option<i64>, Option<i64>)> {
    let conn = rusqlite::Connection::open(db).ok()?;
    conn.query_row(
        "SELECT id, state, offered_at, delivered_at FROM inbound WHERE text = ?1",
        [text],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .ok()
}

#[test]
fn unread_messages_survive_session_expiry_and_sigkill_and_come_at_the_next_login() {
    let dir = TempDir::new("imps-sf-expiry");
    let sim = SimProcess::start(dir.path(), &[]);
    let (mut daemon, imps) = setup(dir.path(), &sim);
    let (s, a) = Session::login(imps, 2);
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, daemon.log());
    assert_eq!(a.text(&["KeepAliveTime"]), Some("2"));

    const TEXT: &str = "Are you coming tonight?";
    from_bob(&sim, TEXT);
    // The client keeps the session alive but never polls: the NewMessage
    // waits in its queue (Poll T) and the row is offered, still pending.
    let offered = eventually(LIMIT, || {
        let k = s.ask("<KeepAlive-Request><TimeToLive>2</TimeToLive></KeepAlive-Request>");
        assert_eq!(k.code(), Some(200), "{}\n{}", k.raw, daemon.log());
        let r = row(&daemon.db, TEXT)?;
        (k.poll && r.2.is_some()).then_some(r)
    })
    .unwrap_or_else(|| panic!("never offered\n{}", daemon.log()));
    let (id, state, _, delivered_at) = offered;
    assert_eq!((state.as_str(), delivered_at), ("pending", None));

    // The session expires unread.
    let expired = eventually(LIMIT, || {
        daemon.log().contains("IMPS session expired").then_some(())
    });
    assert!(expired.is_some(), "{}", daemon.log());
    assert_eq!(s.ask("<Polling-Request/>").code(), Some(600));
    let r = row(&daemon.db, TEXT).unwrap();
    assert_eq!(r.1, "pending", "expiry loses nothing");

    daemon.kill9();
    let daemon = restart(&daemon);
    assert_eq!(row(&daemon.db, TEXT).unwrap().1, "pending");

    // The next Login gets it, named by its row, and confirms it.
    let (s, a) = Session::login(imps, 60);
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, daemon.log());
    let nm = s
        .next_new_message()
        .unwrap_or_else(|| panic!("no NewMessage after the restart\n{}", daemon.log()));
    assert_eq!(nm.text(&["ContentData"]), Some(TEXT));
    assert_eq!(
        nm.text(&["MessageInfo", "Sender", "User", "UserID"]),
        Some(&*format!("wv:{BOB}@sms.test"))
    );
    let message_id = nm.text(&["MessageInfo", "MessageID"]).unwrap().to_owned();
    assert_eq!(message_id, format!("in{id}"));
    assert_eq!(s.delivered(&message_id).code(), Some(200));
    let (_, state, _, delivered_at) = row(&daemon.db, TEXT).unwrap();
    assert_eq!(state, "delivered", "{}", daemon.log());
    assert!(delivered_at.is_some());
    // Confirmed once more (a client that lost the answer): the same.
    assert_eq!(s.delivered(&message_id).code(), Some(200));
    // An id that was never offered to alice.
    assert_eq!(s.delivered("in999").code(), Some(426));
}

#[test]
fn a_message_confirmed_in_the_first_session_is_not_offered_again() {
    let dir = TempDir::new("imps-sf-confirmed");
    let sim = SimProcess::start(dir.path(), &[]);
    let (daemon, imps) = setup(dir.path(), &sim);
    let (s, a) = Session::login(imps, 60);
    assert_eq!(a.code(), Some(200), "{}\n{}", a.raw, daemon.log());

    from_bob(&sim, "first");
    let nm = s
        .next_new_message()
        .unwrap_or_else(|| panic!("no NewMessage\n{}", daemon.log()));
    assert_eq!(nm.text(&["ContentData"]), Some("first"));
    let id = nm.text(&["MessageInfo", "MessageID"]).unwrap().to_owned();
    assert_eq!(s.delivered(&id).code(), Some(200));
    let (_, state, offered_at, delivered_at) = row(&daemon.db, "first").unwrap();
    assert_eq!(state, "delivered");
    assert!(offered_at.is_some() && delivered_at.is_some());
    assert_eq!(s.ask("<Logout-Request/>").code(), Some(200));

    // A new session: the next NewMessage is the next SMS, not the first again
    // (the loop delivers in row order, so a re-offer would come before it).
    let (s, a) = Session::login(imps, 60);
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    from_bob(&sim, "second");
    let nm = s
        .next_new_message()
        .unwrap_or_else(|| panic!("no second NewMessage\n{}", daemon.log()));
    assert_eq!(nm.text(&["ContentData"]), Some("second"), "{}", nm.raw);
    assert_eq!(row(&daemon.db, "first").unwrap().1, "delivered");
}

/// The bridge's side over an in-memory store: only the user a pending
/// message is routed to can confirm it; anyone else's confirmation changes
/// nothing, and an unknown user is refused.
#[tokio::test]
async fn im_received_delivers_only_the_recipients_pending_message() {
    use smsbridge::bridge::api::{BridgeApi, Refusal};
    use smsbridge::store::{InboundState, Received, UnixTime};

    let r = imps_support::rig();
    let bridge = smsbridge::bridge::Bridge::new(std::sync::Arc::clone(&r.shared));
    // "How are you?" from +31641600986, as a modem reads it.
    const HEX: &str =
        "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
    let pdu: Vec<u8> = (0..HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&HEX[i..i + 2], 16).unwrap())
        .collect();
    let now = UnixTime::now();
    let id = r
        .shared
        .db(move |s| {
            let received = s.receive_pdu("262011234567890", &pdu, now)?;
            let Received::Message(id) = received else {
                panic!("a single SMS-DELIVER, not {received:?}")
            };
            let alice = s.user_by_address(ALICE)?.unwrap().id;
            s.mark_inbound_offered(id, alice, now, now.plus(600))?;
            Ok(id)
        })
        .await
        .unwrap();
    let state = || async {
        let s = r.shared.db(move |s| s.inbound(id)).await.unwrap().unwrap();
        s.state
    };

    assert_eq!(
        bridge.im_received("wv:dave@sms.test".into(), id).await,
        Ok(())
    );
    assert_eq!(state().await, InboundState::Pending, "not dave's");
    assert_eq!(
        bridge.im_received("wv:nobody@sms.test".into(), id).await,
        Err(Refusal::UnknownUser("wv:nobody@sms.test".into()))
    );
    assert_eq!(bridge.im_received(ALICE.into(), id).await, Ok(()));
    assert_eq!(state().await, InboundState::Delivered);
    // Again (a client repeating itself): nothing more happens.
    assert_eq!(bridge.im_received(ALICE.into(), id).await, Ok(()));
    assert_eq!(state().await, InboundState::Delivered);
}
