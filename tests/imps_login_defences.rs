//! IMPS Login under attack, against the CSP core with a controlled clock and
//! client address: throttling after failures, the same answer for unknown
//! users, nonces that one client cannot take from another, per-user session
//! caps, and SessionIDs that only work from the address that logged in.

mod imps_support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::Engine;
use imps_support::{Answer, read, request, rig};
use md5::{Digest, Md5};

const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const THERE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn login(user: &str, password: &str) -> String {
    format!("<Login-Request><UserID>{user}</UserID><Password>{password}</Password></Login-Request>")
}

async fn ask_from(
    r: &imps_support::Rig,
    now: std::time::Instant,
    client: IpAddr,
    session: Option<&str>,
    primitive: &str,
) -> Answer {
    let reply = r
        .server
        .handle_from(&request(session, primitive), now, client)
        .await;
    read(reply.http, &reply.body)
}

#[tokio::test]
async fn failed_logins_are_throttled_per_user_and_the_right_password_works_after_the_wait() {
    let r = rig();
    let t = r.t0;
    for _ in 0..6 {
        let a = ask_from(&r, t, HERE, None, &login("wv:alice@sms.test", "guess")).await;
        assert_eq!(a.code(), Some(409), "{}", a.raw);
    }
    // The 7th try is not even checked: the answer says to wait.
    let a = ask_from(&r, t, HERE, None, &login("wv:alice@sms.test", "secret")).await;
    assert_eq!(a.code(), Some(503), "{}", a.raw);
    assert_eq!(
        a.text(&["Result", "Description"]),
        Some("too many failed logins; try again in 1s")
    );
    // From another address too: it is alice's account that is protected.
    let a = ask_from(&r, t, THERE, None, &login("wv:alice@sms.test", "secret")).await;
    assert_eq!(a.code(), Some(503));
    // Other users are not held up.
    let a = ask_from(&r, t, HERE, None, &login("wv:dave@sms.test", "pw2")).await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    // After the wait, the right password works, and clears the count.
    let later = t + Duration::from_secs(1);
    let a = ask_from(&r, later, HERE, None, &login("wv:alice@sms.test", "secret")).await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let a = ask_from(&r, later, HERE, None, &login("wv:alice@sms.test", "wrong")).await;
    assert_eq!(a.code(), Some(409), "counting starts afresh");
}

#[tokio::test]
async fn an_address_guessing_many_users_is_throttled() {
    let r = rig();
    for i in 0..20 {
        let a = ask_from(
            &r,
            r.t0,
            THERE,
            None,
            &login(&format!("wv:u{i}@sms.test"), "x"),
        )
        .await;
        assert_eq!(a.code(), Some(409));
    }
    let a = ask_from(&r, r.t0, THERE, None, &login("wv:u20@sms.test", "x")).await;
    assert_eq!(a.code(), Some(409), "the 21st is still checked");
    let a = ask_from(&r, r.t0, THERE, None, &login("wv:alice@sms.test", "secret")).await;
    assert_eq!(a.code(), Some(503), "then the address waits");
    let a = ask_from(&r, r.t0, HERE, None, &login("wv:alice@sms.test", "secret")).await;
    assert_eq!(a.code(), Some(200), "another address is not held up");
}

#[tokio::test]
async fn a_huge_user_id_is_refused_and_not_remembered() {
    let r = rig();
    let huge = format!("wv:{}@sms.test", "x".repeat(60_000));
    let a = ask_from(
        &r,
        r.t0,
        THERE,
        None,
        &format!(
            "<Login-Request><UserID>{huge}</UserID><DigestSchema>MD5</DigestSchema></Login-Request>"
        ),
    )
    .await;
    assert_eq!(a.code(), Some(400), "{}", &a.raw[..200.min(a.raw.len())]);
    assert_eq!(r.server.pending_nonces(), 0);
}

fn digest(nonce: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(Md5::digest(format!("{nonce}{password}").as_bytes()))
}

#[tokio::test]
async fn a_nonce_asked_for_by_someone_else_does_not_break_a_login_under_way() {
    let r = rig();
    let ask_nonce = "<Login-Request><UserID>wv:alice@sms.test</UserID><DigestSchema>MD5</DigestSchema></Login-Request>";
    let mine = ask_from(&r, r.t0, HERE, None, ask_nonce).await;
    assert_eq!(mine.code(), Some(401));
    let nonce = mine.text(&["Nonce"]).expect("nonce").to_owned();
    // An attacker asks for a nonce for alice from elsewhere.
    let theirs = ask_from(&r, r.t0, THERE, None, ask_nonce).await;
    assert_eq!(theirs.code(), Some(401));
    assert_ne!(theirs.text(&["Nonce"]), Some(nonce.as_str()));
    let second = format!(
        "<Login-Request><UserID>wv:alice@sms.test</UserID><DigestBytes>{}</DigestBytes></Login-Request>",
        digest(&nonce, "secret")
    );
    let a = ask_from(&r, r.t0, HERE, None, &second).await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
}

#[tokio::test]
async fn pending_nonces_from_one_address_are_capped() {
    let r = rig();
    for i in 0..16 {
        let a = ask_from(
            &r,
            r.t0,
            THERE,
            None,
            &format!("<Login-Request><UserID>wv:u{i}@sms.test</UserID><DigestSchema>MD5</DigestSchema></Login-Request>"),
        )
        .await;
        assert_eq!(a.code(), Some(401));
    }
    let a = ask_from(
        &r,
        r.t0,
        THERE,
        None,
        "<Login-Request><UserID>wv:u16@sms.test</UserID><DigestSchema>MD5</DigestSchema></Login-Request>",
    )
    .await;
    assert_eq!(a.code(), Some(503));
    assert_eq!(
        a.text(&["Result", "Description"]),
        Some("too many logins in progress")
    );
    assert_eq!(r.server.pending_nonces(), 16);
    // Someone else can still log in with a nonce.
    let a = ask_from(
        &r,
        r.t0,
        HERE,
        None,
        "<Login-Request><UserID>wv:alice@sms.test</UserID><DigestSchema>MD5</DigestSchema></Login-Request>",
    )
    .await;
    assert_eq!(a.code(), Some(401));
}

#[tokio::test]
async fn a_session_id_works_only_from_the_address_that_logged_in() {
    let r = rig();
    let a = ask_from(&r, r.t0, HERE, None, &login("wv:alice@sms.test", "secret")).await;
    let sid = a.text(&["SessionID"]).expect("SessionID").to_owned();
    let ok = ask_from(&r, r.t0, HERE, Some(&sid), "<Polling-Request/>").await;
    assert!(ok.empty, "{}", ok.raw);
    let stolen = ask_from(
        &r,
        r.t0,
        THERE,
        Some(&sid),
        &imps_support::send("wv:+4915112345678@sms.test", "paid for by alice", false),
    )
    .await;
    assert_eq!(stolen.code(), Some(604), "{}", stolen.raw);
    // Nothing was queued for the modem.
    let queued = r.shared.db(|s| s.messages(None)).await.expect("messages");
    assert!(queued.is_empty(), "{queued:?}");
}

#[tokio::test]
async fn one_user_cannot_take_every_session() {
    let r = rig();
    for _ in 0..8 {
        let a = ask_from(&r, r.t0, HERE, None, &login("wv:alice@sms.test", "secret")).await;
        assert_eq!(a.code(), Some(200));
    }
    let a = ask_from(&r, r.t0, HERE, None, &login("wv:alice@sms.test", "secret")).await;
    assert_eq!(a.code(), Some(503));
    assert_eq!(
        a.text(&["Result", "Description"]),
        Some("too many sessions for this user; log out of another")
    );
    let a = ask_from(&r, r.t0, HERE, None, &login("wv:dave@sms.test", "pw2")).await;
    assert_eq!(a.code(), Some(200), "others still log in");
}
