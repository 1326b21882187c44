//! Every IMPS primitive, request → response, against the real bridge on an
//! in-memory store, without HTTP: the XML elements and the CSP Result codes.

mod imps_support;

use std::time::Duration;

use base64::Engine;
use imps_support::{BOB, CAROL, rig, send, sms_from_bob as sms};
use md5::{Digest, Md5};
use smsbridge::bridge::api::{DeliveryNotice, DeliveryResult, FrontEnd, ImFrontEnd};
use smsbridge::imps::ImpsFrontEnd;
use smsbridge::imps::csp::Mode;
use smsbridge::store::{InboundState, MessageState, UnixTime};

#[tokio::test]
async fn login_with_password_and_the_session_primitives() {
    let r = rig();
    let a = r
        .ask(
            None,
            "<Login-Request><UserID>wv:alice@sms.test</UserID><ClientID><URL>x</URL></ClientID>\
             <Password>secret</Password><TimeToLive>120</TimeToLive></Login-Request>",
        )
        .await;
    assert_eq!(a.primitive.name, "Login-Response");
    assert_eq!(a.code(), Some(200));
    assert_eq!(a.text(&["KeepAliveTime"]), Some("120"));
    assert_eq!(a.text(&["CapabilityRequest"]), Some("T"));
    assert_eq!(a.text(&["ClientID", "URL"]), Some("x"));
    assert_eq!(a.transaction.as_deref(), Some("c1"));
    assert_eq!(a.mode, Some(Mode::Response));
    let sid = a.text(&["SessionID"]).unwrap().to_owned();
    let s = Some(sid.as_str());

    let a = r
        .ask(s, "<ClientCapability-Request><ClientID><URL>x</URL></ClientID><CapabilityList><ClientType>COMPUTER</ClientType></CapabilityList></ClientCapability-Request>")
        .await;
    assert_eq!(a.primitive.name, "ClientCapability-Response");
    assert_eq!(
        a.text(&["AgreedCapabilityList", "ClientType"]),
        Some("COMPUTER")
    );
    assert_eq!(
        a.text(&["AgreedCapabilityList", "InitialDeliveryMethod"]),
        Some("P")
    );
    assert_eq!(
        a.text(&["AgreedCapabilityList", "ServerPollMin"]),
        Some("5")
    );
    assert_eq!(a.session.as_deref(), s);

    let a = r
        .ask(
            s,
            "<Service-Request><AllFunctionsRequest>T</AllFunctionsRequest></Service-Request>",
        )
        .await;
    assert_eq!(a.primitive.name, "Service-Response");
    assert!(
        a.primitive
            .at(&["AllFunctions", "WVCSPFeat", "IMFeat", "IMSendFunc"])
            .is_some()
    );

    let a = r
        .ask(
            s,
            "<KeepAlive-Request><TimeToLive>45</TimeToLive></KeepAlive-Request>",
        )
        .await;
    assert_eq!(
        (a.primitive.name.as_str(), a.code()),
        ("KeepAlive-Response", Some(200))
    );
    assert_eq!(a.text(&["KeepAliveTime"]), Some("45"));
    let a = r
        .ask(
            s,
            "<KeepAlive-Request><TimeToLive>soon</TimeToLive></KeepAlive-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(402));

    let a = r.ask(s, "<Polling-Request/>").await;
    assert!(a.empty && a.http == 200, "nothing queued: empty body");

    let a = r.ask(s, "<Frobnicate-Request/>").await;
    assert_eq!((a.primitive.name.as_str(), a.code()), ("Status", Some(405)));

    let a = r.ask(s, "<Logout-Request/>").await;
    assert_eq!((a.primitive.name.as_str(), a.code()), ("Status", Some(200)));
    let a = r.ask(s, "<Polling-Request/>").await;
    assert_eq!(a.code(), Some(604), "logged out: invalid session");
    let a = r.ask(Some("never-issued"), "<KeepAlive-Request/>").await;
    assert_eq!(a.code(), Some(604));
    let a = r.ask(None, "<GetList-Request/>").await;
    assert_eq!(a.code(), Some(604), "no session at all");
}

#[tokio::test]
async fn keep_alive_time_is_enforced() {
    let r = rig();
    let sid = r.login("wv:alice@sms.test", "secret").await; // TimeToLive 600
    let s = Some(sid.as_str());
    let late = r.t0 + Duration::from_secs(599);
    assert!(r.ask_at(late, s, "<Polling-Request/>").await.empty);
    let too_late = late + Duration::from_secs(601);
    let a = r.ask_at(too_late, s, "<Polling-Request/>").await;
    assert_eq!((a.primitive.name.as_str(), a.code()), ("Status", Some(600)));
}

#[tokio::test]
async fn login_refusals() {
    let r = rig();
    let login = |u: &str, p: &str| {
        format!("<Login-Request><UserID>{u}</UserID><Password>{p}</Password></Login-Request>")
    };
    let a = r.ask(None, &login("wv:alice@sms.test", "wrong")).await;
    assert_eq!(a.code(), Some(409));
    assert!(a.text(&["SessionID"]).is_none());
    let wrong_password = a.text(&["Result", "Description"]).map(str::to_owned);
    // An unknown user gets the very same answer: Logins cannot enumerate users.
    let a = r.ask(None, &login("wv:nobody@sms.test", "x")).await;
    assert_eq!(a.code(), Some(409));
    assert_eq!(
        a.text(&["Result", "Description"]).map(str::to_owned),
        wrong_password
    );
    let a = r.ask(None, &login("sip:erin@sms.test", "pw3")).await;
    assert_eq!(a.code(), Some(409), "a SIP-only user has no IMPS account");
    let a = r
        .ask(
            None,
            "<Login-Request><UserID>wv:alice@sms.test</UserID></Login-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(400));
    let a = r
        .ask(
            None,
            "<Login-Request><Password>x</Password></Login-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(400));
}

#[tokio::test]
async fn login_with_the_nonce_and_md5_digest() {
    let r = rig();
    let first = "<Login-Request><UserID>wv:alice@sms.test</UserID><DigestSchema>SHA</DigestSchema>\
                 <DigestSchema>MD5</DigestSchema></Login-Request>";
    let a = r.ask(None, first).await;
    assert_eq!(a.code(), Some(401), "further authorization required");
    assert_eq!(a.text(&["DigestSchema"]), Some("MD5"));
    let nonce = a.text(&["Nonce"]).unwrap().to_owned();
    let digest = |n: &str, pw: &str| {
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(format!("{n}{pw}").as_bytes()))
    };
    let second = |d: &str| {
        format!(
            "<Login-Request><UserID>wv:alice@sms.test</UserID><DigestBytes>{d}</DigestBytes></Login-Request>"
        )
    };
    let a = r.ask(None, &second(&digest(&nonce, "secret"))).await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    assert!(a.text(&["SessionID"]).is_some());
    // The nonce is used up.
    let a = r.ask(None, &second(&digest(&nonce, "secret"))).await;
    assert_eq!(a.code(), Some(409));
    // A wrong password under a fresh nonce.
    let a = r.ask(None, first).await;
    let n2 = a.text(&["Nonce"]).unwrap().to_owned();
    assert_ne!(n2, nonce);
    let a = r.ask(None, &second(&digest(&n2, "wrong"))).await;
    assert_eq!(a.code(), Some(409));
    let a = r
        .ask(None, "<Login-Request><UserID>wv:alice@sms.test</UserID><DigestSchema>SHA</DigestSchema></Login-Request>")
        .await;
    assert_eq!(a.code(), Some(543), "no matching digest schema");
    // dave did not opt in to the 4-way Login: his right password does not
    // help, and the answer is the one for a wrong password.
    let a = r
        .ask(None, "<Login-Request><UserID>wv:dave@sms.test</UserID><DigestSchema>MD5</DigestSchema></Login-Request>")
        .await;
    assert_eq!(a.code(), Some(401));
    let n3 = a.text(&["Nonce"]).unwrap().to_owned();
    let dave = format!(
        "<Login-Request><UserID>wv:dave@sms.test</UserID><DigestBytes>{}</DigestBytes></Login-Request>",
        digest(&n3, "pw2")
    );
    let a = r.ask(None, &dave).await;
    assert_eq!(a.code(), Some(409));
}

#[tokio::test]
async fn send_message_to_a_subscriber_by_user_id_and_by_nickname() {
    let r = rig();
    let sid = r.login("wv:alice@sms.test", "secret").await;
    let s = Some(sid.as_str());
    let a = r
        .ask(s, &send(&format!("wv:{BOB}@sms.test"), "Hi Bob", true))
        .await;
    assert_eq!(
        (a.primitive.name.as_str(), a.code()),
        ("SendMessage-Response", Some(200))
    );
    let id = a.text(&["MessageID"]).unwrap().to_owned();
    let a = r.ask(s, &send("Bob", "again, by nickname", false)).await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    let a = r
        .ask(
            s,
            &send(&format!("wv:{CAROL}@sms.test"), "not a contact yet", false),
        )
        .await;
    assert_eq!(a.code(), Some(200), "a number needs no contact");
    let msgs = r
        .shared
        .db(|st| st.messages(Some(MessageState::Queued)))
        .await
        .unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0].msisdn.as_str(), BOB);
    assert_eq!(msgs[0].im_message_id.as_deref(), Some(id.as_str()));
    assert!(msgs[0].imdn_positive && msgs[0].imdn_negative);
    assert_eq!(msgs[0].front_end, FrontEnd::Imps);
    assert!(msgs[0].text.ends_with("Hi Bob"));

    let a = r.ask(s, &send("wv:nobody@sms.test", "x", false)).await;
    assert_eq!(a.code(), Some(531), "unknown user");
    let a = r.ask(s, "<SendMessage-Request><MessageInfo><ContentType>image/png</ContentType><Recipient><User><UserID>Bob</UserID></User></Recipient></MessageInfo><ContentData>x</ContentData></SendMessage-Request>").await;
    assert_eq!(a.code(), Some(415));
    let a = r
        .ask(
            s,
            "<SendMessage-Request><ContentData>x</ContentData></SendMessage-Request>",
        )
        .await;
    assert_eq!(a.code(), Some(400));
    let a = r.ask(s, &send("Bob", "", false)).await;
    assert_eq!(a.code(), Some(400), "empty text");
}

#[tokio::test]
async fn new_message_and_delivery_report_through_polling() {
    let r = rig();
    let fe = ImpsFrontEnd(std::sync::Arc::clone(&r.server));
    assert!(
        matches!(
            fe.deliver(sms("wv:alice@sms.test", "hi")).await,
            DeliveryResult::Retry(_)
        ),
        "logged out: kept"
    );
    assert_eq!(fe.online("wv:alice@sms.test"), Some(false));
    let sid = r.login("wv:alice@sms.test", "secret").await;
    let s = Some(sid.as_str());
    assert_eq!(fe.online("wv:alice@sms.test"), Some(true));
    assert_eq!(
        fe.deliver(sms("wv:alice@sms.test", "Yes, 12:30 <ok>"))
            .await,
        DeliveryResult::Offered
    );
    let k = r.ask(s, "<KeepAlive-Request/>").await;
    assert!(k.poll, "Poll T tells the client to poll");
    let n = r.ask(s, "<Polling-Request/>").await;
    assert_eq!(
        (n.primitive.name.as_str(), n.mode),
        ("NewMessage", Some(Mode::Request))
    );
    assert_eq!(n.text(&["ContentData"]), Some("Yes, 12:30 <ok>"));
    assert_eq!(
        n.text(&["MessageInfo", "Sender", "User", "UserID"]),
        Some(&*format!("wv:{BOB}@sms.test"))
    );
    assert_eq!(
        n.text(&["MessageInfo", "Sender", "User", "ScreenName"]),
        Some("Bob")
    );
    assert_eq!(
        n.text(&["MessageInfo", "Recipient", "User", "UserID"]),
        Some("wv:alice@sms.test")
    );
    assert_eq!(n.text(&["MessageInfo", "ContentType"]), Some("text/plain"));
    assert_eq!(
        n.text(&["MessageInfo", "DateTime"]),
        Some("2023-11-14T22:13:20Z")
    );
    let delivered = r
        .ask(
            s,
            &format!(
                "<MessageDelivered><MessageID>{}</MessageID></MessageDelivered>",
                n.text(&["MessageInfo", "MessageID"]).unwrap()
            ),
        )
        .await;
    assert_eq!(delivered.code(), Some(200));

    let notice = |ok: bool, reason: Option<&str>| DeliveryNotice {
        displayed: false,
        recipient_user: None,
        to_user: "wv:alice@sms.test".into(),
        front_end: FrontEnd::Imps,
        im_message_id: "m42".into(),
        recipient: BOB.into(),
        delivered: ok,
        neutral: false,
        at: UnixTime(1_700_000_100),
        reason: reason.map(str::to_owned),
        cause: reason.map(|_| smsbridge::bridge::api::FailureCause::Expired),
    };
    assert_eq!(
        fe.notify(notice(true, None)).await,
        DeliveryResult::Delivered
    );
    assert_eq!(
        fe.notify(notice(false, Some("validity period expired")))
            .await,
        DeliveryResult::Delivered
    );
    let d = r.ask(s, "<Polling-Request/>").await;
    assert_eq!(d.primitive.name, "DeliveryReport-Request");
    assert_eq!(d.code(), Some(200));
    assert_eq!(d.text(&["MessageInfo", "MessageID"]), Some("m42"));
    assert_eq!(
        d.text(&["MessageInfo", "Recipient", "User", "UserID"]),
        Some(&*format!("wv:{BOB}@sms.test"))
    );
    assert!(d.poll, "the second report waits");
    let d = r.ask(s, "<Polling-Request/>").await;
    assert_eq!(d.code(), Some(542), "expired");
    assert!(r.ask(s, "<Polling-Request/>").await.empty);
}

#[tokio::test]
async fn messages_between_imps_users_are_stored_and_forwarded() {
    let r = rig();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(smsbridge::bridge::run_inbound(
        std::sync::Arc::clone(&r.shared),
        stop.clone(),
    ));
    let alice = r.login("wv:alice@sms.test", "secret").await;
    let a = r
        .ask(Some(&alice), &send("wv:dave@sms.test", "hello dave", false))
        .await;
    assert_eq!(a.code(), Some(200), "{}", a.raw);
    // dave is logged out: the delivery loop tries, keeps it, and delivers it
    // at his login.
    let kept = async {
        loop {
            let rows = r.shared.db(|st| st.inbound_messages()).await.unwrap();
            if rows.iter().any(|m| {
                m.text == "hello dave" && m.state == InboundState::Pending && m.attempts > 0
            }) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), kept)
        .await
        .expect("the IM for dave is tried and kept while he is logged out");
    let dave = r.login("wv:dave@sms.test", "pw2").await;
    let mut got = None;
    for _ in 0..50 {
        let n = r.ask(Some(&dave), "<Polling-Request/>").await;
        if n.primitive.name == "NewMessage" {
            got = Some(n);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = got.expect("NewMessage for dave");
    assert_eq!(n.text(&["ContentData"]), Some("hello dave"));
    assert_eq!(
        n.text(&["MessageInfo", "Sender", "User", "UserID"]),
        Some("wv:alice@sms.test")
    );
    // dave blocks alice: her next IM is refused.
    let block = "<BlockEntity-Request><BlockList><AddList><UserID>wv:alice@sms.test</UserID></AddList></BlockList></BlockEntity-Request>";
    assert_eq!(r.ask(Some(&dave), block).await.code(), Some(200));
    let a = r
        .ask(
            Some(&alice),
            &send("wv:dave@sms.test", "still there?", false),
        )
        .await;
    assert_eq!(a.code(), Some(532));
    stop.cancel();
}
