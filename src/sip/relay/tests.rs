use super::*;
use crate::bridge::api::Recipient;
use crate::presence::Presence;
use crate::sip::wire::parse_uri;

const ALICE: &str = "sip:alice@sms.example";
const JANE: &str = "sip:jane@otherdomain.test";
const CONTACT: &str = "sip:smsbridge@127.0.0.1:5060";

fn relays() -> Relays {
    let mut r = Relays::new(2);
    r.set_peer_domains(["OtherDomain.test".to_owned()]);
    r
}

fn dialog(call_id: &str, expires_at: u64) -> Subscription {
    Subscription {
        call_id: call_id.into(),
        local_tag: format!("ours-{call_id}"),
        remote_tag: "w1".into(),
        local_uri: JANE.into(),
        remote_uri: ALICE.into(),
        remote_target: "sip:alice@127.0.0.1:5070".into(),
        route_set: Vec::new(),
        flow: None,
        watcher: ALICE.into(),
        target: Recipient::Alias(JANE.into()),
        msisdn: String::new(),
        im_user: None,
        event_id: None,
        expires_at,
        local_cseq: 1,
        decision: crate::bridge::api::WatchDecision::Allow,
        presentity: None,
        unavailable: None,
        winfo: None,
    }
}

fn state(out: &OutRequest) -> &str {
    out.headers
        .iter()
        .find(|(n, _)| n == "Subscription-State")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

fn news(state: ForeignWatchState) -> ForeignPresence {
    ForeignPresence {
        watcher: ALICE.into(),
        presentity: JANE.into(),
        state,
    }
}

#[test]
fn only_users_of_peer_domains_are_relayed() {
    let r = relays();
    let uri = |s: &str| parse_uri(s).unwrap();
    assert_eq!(
        r.presentity(&uri("sip:jane@otherdomain.test")),
        Some(JANE.into())
    );
    assert_eq!(
        r.presentity(&uri("sip:jane@OTHERDOMAIN.test;transport=tcp")),
        Some(JANE.into())
    );
    assert_eq!(r.presentity(&uri("sip:jane@sms.example")), None);
    assert_eq!(r.presentity(&uri("sip:otherdomain.test")), None);
    assert_eq!(r.presentity(&uri("tel:+15550100")), None);
}

#[test]
fn a_dialog_is_pending_then_follows_the_news_of_its_watch() {
    let mut r = relays();
    let (first, watch) = r
        .start(dialog("c1", 1600), JANE.into(), CONTACT, 1000)
        .unwrap();
    assert!(watch);
    assert_eq!(
        (first.method, first.request_uri.as_str(), first.cseq),
        ("NOTIFY", "sip:alice@127.0.0.1:5070", 1)
    );
    assert_eq!(
        (first.from.as_str(), first.from_tag.as_str()),
        ("<sip:jane@otherdomain.test>", "ours-c1")
    );
    assert_eq!(first.to, "<sip:alice@sms.example>;tag=w1");
    assert_eq!(state(&first), "pending;expires=600");
    assert!(first.body.is_empty());
    let open = Presence {
        open: true,
        note: Some("Online".into()),
        ..Presence::default()
    };
    let sent = r.news(&news(ForeignWatchState::Active(open.clone())), 1100);
    assert_eq!(sent.len(), 1);
    assert_eq!((state(&sent[0]), sent[0].cseq), ("active;expires=500", 2));
    assert_eq!(
        sent[0].content_type.as_deref(),
        Some("application/pidf+xml")
    );
    assert_eq!(
        String::from_utf8(sent[0].body.clone()).unwrap(),
        pidf::presence_document(JANE, JANE, &open)
    );
    // A second device of the same watcher shares the watch and starts
    // from what is known.
    let (second, watch) = r
        .start(dialog("c2", 1600), JANE.into(), CONTACT, 1101)
        .unwrap();
    assert!(!watch);
    assert_eq!(state(&second), "active;expires=499");
    // Other watchers' news is not theirs.
    let mut other = news(ForeignWatchState::Pending);
    other.watcher = "sip:bob@sms.example".into();
    assert!(r.news(&other, 1102).is_empty());
    let ended = r.news(
        &news(ForeignWatchState::Terminated("rejected".into())),
        1103,
    );
    assert_eq!(ended.len(), 2);
    assert!(
        ended
            .iter()
            .all(|n| state(n) == "terminated;reason=rejected")
    );
    assert!(!r.has("c1", "ours-c1") && !r.has("c2", "ours-c2"));
}

#[test]
fn refresh_unsubscribe_and_the_watch_it_ends() {
    let mut r = relays();
    r.start(dialog("c1", 1600), JANE.into(), CONTACT, 1000)
        .unwrap();
    r.start(dialog("c2", 1600), JANE.into(), CONTACT, 1000)
        .unwrap();
    assert_eq!(
        r.refresh("c1", "ours-c1", "sip:eve@sms.example", 600, 1001),
        Err(403)
    );
    assert_eq!(
        r.refresh("c9", "ours-c1", ALICE, 600, 1001)
            .map(|d| d.expires),
        Err(481)
    );
    let done = r.refresh("c1", "ours-c1", ALICE, 7200, 1001).unwrap();
    assert_eq!(
        (done.expires, done.local_tag.as_str(), done.unwatch),
        (3600, "ours-c1", None)
    );
    assert_eq!(state(&done.notify), "pending;expires=3600");
    // The first dialog ends: the watch stays for the second.
    let done = r.refresh("c1", "ours-c1", ALICE, 0, 1002).unwrap();
    assert_eq!(
        (state(&done.notify), done.unwatch),
        ("terminated;reason=timeout", None)
    );
    let done = r.refresh("c2", "ours-c2", ALICE, 0, 1002).unwrap();
    assert_eq!(done.unwatch, Some((ALICE.to_owned(), JANE.to_owned())));
}

#[test]
fn dialogs_run_out_and_a_fetch_watches_nothing() {
    let mut r = relays();
    r.start(dialog("c1", 1600), JANE.into(), CONTACT, 1000)
        .unwrap();
    assert_eq!(r.expire(1599), (Vec::new(), Vec::new()));
    let (last, unwatch) = r.expire(1600);
    assert_eq!(state(&last[0]), "terminated;reason=timeout");
    assert_eq!(unwatch, [(ALICE.to_owned(), JANE.to_owned())]);
    let (fetch, watch) = r
        .start(dialog("c3", 1000), JANE.into(), CONTACT, 1000)
        .unwrap();
    assert_eq!((state(&fetch), watch), ("terminated;reason=timeout", false));
    assert!(!r.has("c3", "ours-c3"));
}

#[test]
fn the_table_is_capped_and_reasons_are_registered_ones() {
    let mut r = relays();
    assert!(
        r.start(dialog("c1", 1600), JANE.into(), CONTACT, 1000)
            .is_some()
    );
    assert!(
        r.start(dialog("c2", 1600), JANE.into(), CONTACT, 1000)
            .is_some()
    );
    assert!(
        r.start(dialog("c3", 1600), JANE.into(), CONTACT, 1000)
            .is_none()
    );
    assert_eq!(terminated_reason("Probation"), "probation");
    assert_eq!(terminated_reason("SIP 481"), "noresource");
}
