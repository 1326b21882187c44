//! The presentity's policy on SIP subscriptions (pending, allow,
//! polite-block, block) and `presence.winfo` for SIP presentities.

use super::*;
use crate::sip::outbound::{self, OutRequest};
use crate::sip::{pidf, winfo};

const ERIN: &str = "sip:erin@sms.example";
const ERIN_WV: &str = "wv:erin@sms.example";
const CONTACT: &str = "sip:smsbridge@127.0.0.1:5060";
const HARRY: &str = "sip:harry@sms.example";

/// A bridge whose alias `erin` is an IMPS user online, deciding `d`.
fn erin_uas(d: WatchDecision) -> (Uas, Arc<Fake>) {
    let (u, fake) = uas();
    *fake.user.lock().unwrap() = Some(ImUserPresence {
        user_part: "erin".into(),
        front_end: FrontEnd::Imps,
        presence: Presence::online(),
    });
    *fake.decision.lock().unwrap() = Some(d);
    (u, fake)
}

fn subscribe_erin(extra: &[(&'static str, &'static str)]) -> Request {
    let mut h = vec![
        ("Event", "presence"),
        ("Contact", "<sip:alice@127.0.0.1:5070>"),
        ("Expires", "600"),
    ];
    h.extend_from_slice(extra);
    request("SUBSCRIBE", ERIN, &h, "")
}

/// The NOTIFY the glue sends for a `Followup::Notify`.
fn notify_of(h: &Handled) -> OutRequest {
    let [Followup::Notify(s)] = &h.followups[..] else {
        panic!("{h:?}");
    };
    outbound::presence_notify(s, &s.state(NOW), "sms.example", CONTACT)
}

fn sent(h: &Handled) -> OutRequest {
    let [Followup::Send(out)] = &h.followups[..] else {
        panic!("{h:?}");
    };
    (**out).clone()
}

fn headers(out: &OutRequest) -> Vec<(&str, &str)> {
    out.headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

fn body(out: &OutRequest) -> &str {
    std::str::from_utf8(&out.body).unwrap()
}

/// Erin's presence changes: how many subscriptions hear of it.
fn erin_goes_away(u: &Uas) -> usize {
    let away = Presence {
        open: true,
        activities: vec!["away".into()],
        ..Presence::default()
    };
    lock(&u.subs)
        .user_changed(FrontEnd::Imps, "erin", &away)
        .len()
}

fn change(presentity: &str, watcher: &str, decision: WatchDecision) -> WatchChanged {
    WatchChanged {
        presentity: presentity.into(),
        watcher: watcher.into(),
        decision,
    }
}

#[tokio::test]
async fn pending_waits_without_a_body_then_the_answer_activates_or_rejects() {
    let (u, fake) = erin_uas(WatchDecision::Pending);
    let h = authed(&u, subscribe_erin(&[])).await;
    assert_eq!(h.reply.code, 202);
    assert_eq!(h.reply.header("Expires"), Some("600"));
    assert_eq!(
        *fake.authorised.lock().unwrap(),
        vec![(ERIN_WV.to_owned(), ALICE.to_owned())]
    );
    let n = notify_of(&h);
    assert_eq!(
        headers(&n),
        vec![
            ("Event", "presence"),
            ("Subscription-State", "pending;expires=600"),
            ("Contact", "<sip:smsbridge@127.0.0.1:5060>"),
        ]
    );
    assert_eq!((n.content_type.as_deref(), n.body.len()), (None, 0));

    // Erin's news is not for a pending watcher.
    assert_eq!(erin_goes_away(&u), 0);

    // Erin allows: the subscription is asked again, then the full document.
    let (now, reload) = u.decided(&change(ERIN_WV, ALICE, WatchDecision::Allow), NOW);
    assert!(now.is_empty(), "{now:?}");
    let [s] = &reload[..] else { panic!() };
    let n = u.reloaded(s.clone(), NOW).await;
    assert_eq!(
        headers(&n),
        vec![
            ("Event", "presence"),
            ("Subscription-State", "active;expires=600"),
            ("Contact", "<sip:smsbridge@127.0.0.1:5060>"),
        ]
    );
    assert_eq!(n.cseq, 2);
    assert_eq!(n.content_type.as_deref(), Some("application/pidf+xml"));
    assert_eq!(
        body(&n),
        pidf::presence_document(ERIN, ERIN, &Presence::online())
    );
    // The same decision again says nothing; a change reaches the watcher.
    let (now, reload) = u.decided(&change(ERIN_WV, ALICE, WatchDecision::Allow), NOW);
    assert!(now.is_empty() && reload.is_empty());
    assert_eq!(erin_goes_away(&u), 1);

    // Erin removes the watcher: terminated, rejected, gone.
    let (now, reload) = u.decided(&change(ERIN, ALICE, WatchDecision::Block), NOW);
    assert!(reload.is_empty());
    let [n] = &now[..] else { panic!("{now:?}") };
    assert_eq!(
        headers(n),
        vec![
            ("Event", "presence"),
            ("Subscription-State", "terminated;reason=rejected"),
            ("Contact", "<sip:smsbridge@127.0.0.1:5060>"),
        ]
    );
    assert_eq!((n.cseq, n.body.len()), (4, 0));
    assert_eq!(lock(&u.subs).len(), 0);
}

#[tokio::test]
async fn polite_block_shows_offline_and_nothing_more() {
    let (u, _) = erin_uas(WatchDecision::PoliteBlock);
    let h = authed(&u, subscribe_erin(&[])).await;
    assert_eq!(h.reply.code, 200);
    let n = notify_of(&h);
    assert_eq!(headers(&n)[1], ("Subscription-State", "active;expires=600"));
    assert_eq!(n.content_type.as_deref(), Some("application/pidf+xml"));
    assert_eq!(
        body(&n),
        pidf::presence_document(ERIN, ERIN, &Presence::offline())
    );
    assert_eq!(erin_goes_away(&u), 0);
    // Downgraded from allowed: the offline document at once.
    let (u, _) = erin_uas(WatchDecision::Allow);
    authed(&u, subscribe_erin(&[])).await;
    let (now, _) = u.decided(&change(ERIN_WV, ALICE, WatchDecision::PoliteBlock), NOW);
    let [n] = &now[..] else { panic!() };
    assert_eq!(
        body(n),
        pidf::presence_document(ERIN, ERIN, &Presence::offline())
    );
}

#[tokio::test]
async fn block_is_403_and_a_refresh_blocked_now_ends_rejected() {
    let (u, fake) = erin_uas(WatchDecision::Block);
    let h = authed(&u, subscribe_erin(&[])).await;
    assert_eq!(h.reply.code, 403);
    assert!(h.followups.is_empty());
    assert_eq!(lock(&u.subs).len(), 0);

    *fake.decision.lock().unwrap() = Some(WatchDecision::Allow);
    let h = authed(&u, subscribe_erin(&[])).await;
    assert_eq!(h.reply.code, 200);
    *fake.decision.lock().unwrap() = Some(WatchDecision::Block);
    let refresh = subscribe_erin(&[
        ("To", "<sip:erin@sms.example>;tag=tag1"),
        ("CSeq", "2 SUBSCRIBE"),
    ]);
    let h = authed(&u, refresh).await;
    assert_eq!((h.reply.code, h.reply.header("Expires")), (200, Some("0")));
    let n = notify_of(&h);
    assert_eq!(
        headers(&n)[1],
        ("Subscription-State", "terminated;reason=rejected")
    );
    assert!(n.body.is_empty());
    assert_eq!(lock(&u.subs).len(), 0);
}

#[tokio::test]
async fn a_subscriber_is_not_asked() {
    let (u, fake) = uas();
    *fake.decision.lock().unwrap() = Some(WatchDecision::Block);
    let req = request(
        "SUBSCRIBE",
        "sip:+491715550001@sms.example",
        &[("Event", "presence"), ("Contact", "<sip:a@127.0.0.1>")],
        "",
    );
    assert_eq!(authed(&u, req).await.reply.code, 200);
    assert!(fake.authorised.lock().unwrap().is_empty());
}

fn subscribe_winfo(uri: &str, call_id: &str, extra: &[(&str, &str)]) -> Request {
    let mut h = vec![
        ("Event", "presence.winfo"),
        ("Accept", "application/watcherinfo+xml"),
        ("Contact", "<sip:alice@127.0.0.1:5070>"),
        ("Expires", "600"),
        ("Call-ID", call_id),
    ];
    h.extend_from_slice(extra);
    request("SUBSCRIBE", uri, &h, "")
}

const WINFO_HEADERS: [(&str, &str); 3] = [
    ("Event", "presence.winfo"),
    ("Subscription-State", "active;expires=600"),
    ("Contact", "<sip:smsbridge@127.0.0.1:5060>"),
];

#[tokio::test]
async fn winfo_full_then_partial_documents_with_versions() {
    let (u, fake) = uas();
    *fake.watchers.lock().unwrap() = vec![WatcherInfo {
        watcher: HARRY.into(),
        decision: WatchDecision::Pending,
        since: crate::store::UnixTime(NOW as i64),
    }];
    let h = authed(&u, subscribe_winfo(ALICE, "w-1", &[])).await;
    assert_eq!(
        (h.reply.code, h.reply.header("Expires")),
        (200, Some("600"))
    );
    let n = sent(&h);
    assert_eq!(n.method, "NOTIFY");
    assert_eq!(n.request_uri, "sip:alice@127.0.0.1:5070");
    assert_eq!(headers(&n), WINFO_HEADERS.to_vec());
    assert_eq!(
        n.content_type.as_deref(),
        Some("application/watcherinfo+xml")
    );
    assert_eq!(n.cseq, 1);
    assert_eq!(
        body(&n),
        winfo::document(ALICE, 0, true, &[(HARRY, WatchDecision::Pending)])
    );

    // A new watcher waits: partial, version 1.
    let news = u.watcher_news(ALICE, "sip:bob@sms.example", WatchDecision::Pending, NOW);
    let [n] = &news[..] else { panic!() };
    assert_eq!((headers(n), n.cseq), (WINFO_HEADERS.to_vec(), 2));
    assert_eq!(
        body(n),
        winfo::document(
            ALICE,
            1,
            false,
            &[("sip:bob@sms.example", WatchDecision::Pending)]
        )
    );
    // Alice allows harry (from IMPS, say): partial, version 2.
    let (now, reload) = u.decided(&change(ALICE, HARRY, WatchDecision::Allow), NOW);
    assert!(reload.is_empty());
    let [n] = &now[..] else { panic!() };
    assert_eq!(
        body(n),
        winfo::document(ALICE, 2, false, &[(HARRY, WatchDecision::Allow)])
    );
    // Nobody else's news.
    assert!(
        u.watcher_news(ERIN, HARRY, WatchDecision::Pending, NOW)
            .is_empty()
    );

    // A refresh: the full list again, version 3.
    let tagged = [
        ("To", "<sip:alice@sms.example>;tag=tag1"),
        ("CSeq", "2 SUBSCRIBE"),
    ];
    let h = authed(&u, subscribe_winfo(ALICE, "w-1", &tagged)).await;
    assert_eq!(h.reply.code, 200);
    let n = sent(&h);
    assert_eq!(n.cseq, 4);
    assert!(
        body(&n).contains("version=\"3\" state=\"full\""),
        "{}",
        body(&n)
    );

    // Unsubscribe: terminated, no body, no more news.
    let mut gone = tagged.to_vec();
    gone.extend([("Expires", "0"), ("CSeq", "3 SUBSCRIBE")]);
    let h = authed(&u, subscribe_winfo(ALICE, "w-1", &gone)).await;
    let n = notify_of(&h);
    assert_eq!(
        headers(&n),
        vec![
            ("Event", "presence.winfo"),
            ("Subscription-State", "terminated;reason=timeout"),
            ("Contact", "<sip:smsbridge@127.0.0.1:5060>"),
        ]
    );
    assert!(n.body.is_empty() && n.content_type.is_none());
    assert!(
        u.watcher_news(ALICE, HARRY, WatchDecision::Pending, NOW)
            .is_empty()
    );
}

#[tokio::test]
async fn winfo_only_for_ones_own_address_in_its_format_and_capped() {
    let (u, _) = uas();
    let h = authed(&u, subscribe_winfo(ERIN, "w-0", &[])).await;
    assert_eq!(h.reply.code, 403);
    // The format is checked before anyone is asked who they are.
    let req = subscribe_winfo(ALICE, "w-0", &[("Accept", "application/pidf+xml")]);
    let h = u.handle(&req, NOW).await;
    assert_eq!(
        (h.reply.code, h.reply.header("Accept")),
        (406, Some(winfo::MIME))
    );
    // No Accept: the package's default format.
    let req = request(
        "SUBSCRIBE",
        ALICE,
        &[
            ("Event", "presence.winfo"),
            ("Contact", "<sip:alice@127.0.0.1:5070>"),
            ("Call-ID", "w-default"),
        ],
        "",
    );
    assert_eq!(authed(&u, req).await.reply.code, 200);
    for i in 1..winfo::MAX_PER_USER {
        let call_id = format!("w-{i}");
        let h = authed(&u, subscribe_winfo(ALICE, &call_id, &[])).await;
        assert_eq!(h.reply.code, 200, "{i}");
    }
    let h = authed(&u, subscribe_winfo(ALICE, "w-over", &[])).await;
    assert_eq!(h.reply.code, 403);
    assert_eq!(lock(&u.subs).len(), winfo::MAX_PER_USER);
    // A watcher of another domain never watches our users' watchers.
    let req = request(
        "SUBSCRIBE",
        ALICE,
        &[
            ("Event", "presence.winfo"),
            ("From", "<sip:jane@otherdomain.test>;tag=j1"),
            ("Contact", "<sip:jane@127.0.0.2>"),
        ],
        "",
    );
    let mut req = req;
    req.source = "127.0.0.2:5060".parse().unwrap();
    assert_eq!(u.handle(&req, NOW).await.reply.code, 403);
}

#[tokio::test]
async fn an_opted_out_subscriber_is_shown_closed_with_why() {
    let (u, fake) = uas();
    let why = "opted out of messages (STOP)";
    *fake.unavailable.lock().unwrap() = Some(why.into());
    let req = request(
        "SUBSCRIBE",
        "sip:+491715550001@sms.example",
        &[("Event", "presence"), ("Contact", "<sip:a@127.0.0.1>")],
        "",
    );
    let h = authed(&u, req).await;
    assert_eq!(h.reply.code, 200);
    let n = notify_of(&h);
    let entity = "sip:+491715550001@sms.example";
    assert_eq!(body(&n), pidf::document(entity, "+491715550001", Some(why)));
}
