use super::*;
use crate::presence::Presence;
use crate::sip::route::HopKind;
use crate::sip::wire::Transport;

const HARRY: &str = "wv:harry@example.com";
const JANE: &str = "sip:jane@otherdomain.test";
const PIDF_OPEN: &str = "<?xml version=\"1.0\"?>\
    <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
    xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" entity=\"sip:jane@otherdomain.test\">\
    <tuple id=\"t1\"><status><basic>open</basic></status><note>tuple note</note></tuple>\
    <dm:person id=\"p\"><dm:note>At lunch</dm:note></dm:person></presence>";
const PIDF_CLOSED: &str = "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:jane@otherdomain.test\">\
    <tuple id=\"t1\"><status><basic>closed</basic></status></tuple></presence>";

fn route() -> Route {
    Route {
        kind: HopKind::Static,
        next_hop: Some("sip:127.0.0.2:5060".into()),
        server_login: None,
        proxy_login: None,
    }
}

fn ids(n: u32) -> Ids {
    Ids {
        call_id: format!("c{n}@smsbridge"),
        tag: format!("t{n}"),
    }
}

fn key() -> Key {
    (HARRY.to_owned(), JANE.to_owned())
}

fn table() -> (Watches, OutRequest) {
    let mut w = Watches::new(2);
    let Ok(Started::New(out)) = w.watch(
        HARRY,
        JANE,
        "sip:harry@sms.example",
        "sip:smsbridge@127.0.0.1:5060",
        route(),
        ids(1),
        1000,
    ) else {
        panic!("not started")
    };
    (w, *out)
}

fn ok(cseq: u32, expires: u32) -> Final {
    Final {
        code: 200,
        headers: vec![
            ("To".into(), format!("<{JANE}>;tag=n1")),
            ("Contact".into(), "<sip:jane@127.0.0.2:5060>".into()),
            (
                "Record-Route".into(),
                "<sip:p2.otherdomain.test;lr>, <sip:p1.otherdomain.test;lr>".into(),
            ),
            ("Expires".into(), expires.to_string()),
        ],
        cseq,
        body: Vec::new(),
    }
}

/// A table whose watch was accepted at 1000 for 600 s.
fn live() -> Watches {
    let (mut w, out) = table();
    assert_eq!(
        w.answered(&key(), &out.call_id, Ok(&ok(1, 600)), 1000),
        (Ok(()), None)
    );
    w
}

/// A final answer with no headers.
fn status(code: u16, cseq: u32) -> Final {
    Final {
        code,
        headers: Vec::new(),
        cseq,
        body: Vec::new(),
    }
}

fn notify(call_id: &str, to_tag: &str, from_tag: &str, state: &str, body: &str) -> Request {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/pidf+xml\r\n".into()
    };
    let text = format!(
        "NOTIFY sip:smsbridge@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKn1\r\n\
         From: <{JANE}>;tag={from_tag}\r\n\
         To: <sip:harry@sms.example>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 NOTIFY\r\n\
         Contact: <sip:jane@127.0.0.2:5060>\r\n\
         Event: presence\r\n\
         Subscription-State: {state}\r\n\
         {ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    Request::parse(
        text.as_bytes(),
        "127.0.0.2:5060".parse().unwrap(),
        Transport::Udp,
    )
    .unwrap()
}

fn header<'a>(out: &'a OutRequest, name: &str) -> Vec<&'a str> {
    out.headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn the_first_subscribe() {
    let (_, out) = table();
    assert_eq!(
        (
            out.method,
            out.request_uri.as_str(),
            out.next_hop.as_deref()
        ),
        ("SUBSCRIBE", JANE, Some("sip:127.0.0.2:5060"))
    );
    assert_eq!(out.from, "<sip:harry@sms.example>");
    assert_eq!(out.from_tag, "t1");
    assert_eq!(out.to, "<sip:jane@otherdomain.test>");
    assert_eq!((out.call_id.as_str(), out.cseq), ("c1@smsbridge", 1));
    assert_eq!(
        out.headers,
        vec![
            ("Event".to_owned(), "presence".to_owned()),
            ("Accept".to_owned(), "application/pidf+xml".to_owned()),
            ("Expires".to_owned(), "3600".to_owned()),
            (
                "Contact".to_owned(),
                "<sip:smsbridge@127.0.0.1:5060>".to_owned()
            ),
        ]
    );
    assert!(out.body.is_empty() && out.content_type.is_none());
}

#[test]
fn an_established_dialog_is_refreshed_at_three_quarters() {
    let (mut w, out) = table();
    let r = w.answered(&key(), &out.call_id, Ok(&ok(1, 600)), 1000);
    assert_eq!(r, (Ok(()), None));
    assert!(w.due(1449, || ids(9)).requests.is_empty());
    let due = w.due(1450, || ids(9));
    assert_eq!(due.requests.len(), 1);
    let (k, refresh) = &due.requests[0];
    assert_eq!(k, &key());
    assert_eq!(refresh.request_uri, "sip:jane@127.0.0.2:5060");
    assert_eq!(refresh.to, "<sip:jane@otherdomain.test>;tag=n1");
    assert_eq!(
        (refresh.call_id.as_str(), refresh.cseq),
        ("c1@smsbridge", 2)
    );
    assert_eq!(
        header(refresh, "Route"),
        [
            "<sip:p1.otherdomain.test;lr>",
            "<sip:p2.otherdomain.test;lr>"
        ]
    );
    assert_eq!(
        refresh.next_hop.as_deref(),
        Some("sip:p1.otherdomain.test;lr")
    );
    // Sent once, not at every tick.
    assert!(w.due(1451, || ids(9)).requests.is_empty());
    // A digest retry used CSeq 3: the next one is 4.
    assert_eq!(
        w.answered(&key(), "c1@smsbridge", Ok(&ok(3, 600)), 1451),
        (Ok(()), None)
    );
    let next = w.due(1451 + 450, || ids(9));
    assert_eq!(next.requests[0].1.cseq, 4);
}

#[test]
fn a_short_expiry_from_the_server_is_honoured() {
    let (mut w, out) = table();
    assert_eq!(
        w.answered(&key(), &out.call_id, Ok(&ok(1, 2)), 1000),
        (Ok(()), None)
    );
    assert_eq!(w.due(1001, || ids(9)).requests.len(), 1);
    let (mut w, out) = table();
    assert_eq!(
        w.answered(&key(), &out.call_id, Ok(&ok(1, 1)), 1000),
        (Ok(()), None)
    );
    assert!(w.due(1000, || ids(9)).requests.is_empty());
    assert_eq!(w.due(1001, || ids(9)).requests.len(), 1);
}

#[test]
fn pending_then_active_then_terminated() {
    let mut w = live();
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n1", "pending;expires=600", ""),
        1001,
        || ids(9),
    );
    assert_eq!(n.reply.code, 200);
    assert_eq!(
        n.news,
        Some(ForeignPresence {
            watcher: HARRY.into(),
            presentity: JANE.into(),
            state: ForeignWatchState::Pending,
        })
    );
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n1", "active;expires=599", PIDF_OPEN),
        1002,
        || ids(9),
    );
    assert_eq!(n.reply.code, 200);
    let expected = Presence {
        open: true,
        note: Some("At lunch".into()),
        ..Presence::default()
    };
    assert_eq!(
        n.news.unwrap().state,
        ForeignWatchState::Active(expected.clone())
    );
    // Watching again gives the last news at once, no second dialog.
    let again = w.watch(
        HARRY,
        JANE,
        "sip:harry@sms.example",
        "c",
        route(),
        ids(5),
        1003,
    );
    assert_eq!(
        again,
        Ok(Started::Existing(Some(ForeignPresence {
            watcher: HARRY.into(),
            presentity: JANE.into(),
            state: ForeignWatchState::Active(expected),
        })))
    );
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n1", "active", PIDF_CLOSED),
        1004,
        || ids(9),
    );
    assert_eq!(
        n.news.unwrap().state,
        ForeignWatchState::Active(Presence::offline())
    );
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n1", "terminated;reason=rejected", ""),
        1005,
        || ids(9),
    );
    assert_eq!(
        (n.reply.code, n.news.unwrap().state),
        (200, ForeignWatchState::Terminated("rejected".into()))
    );
    assert_eq!(w.len(), 0);
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n1", "active", PIDF_OPEN),
        1006,
        || ids(9),
    );
    assert_eq!((n.reply.code, n.news), (481, None));
}

#[test]
fn a_notify_before_the_answer_sets_the_dialog_up() {
    let (mut w, out) = table();
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n7", "pending", ""),
        1000,
        || ids(9),
    );
    assert_eq!(n.news.unwrap().state, ForeignWatchState::Pending);
    // Another remote tag is another dialog (a fork): not ours.
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n8", "pending", ""),
        1000,
        || ids(9),
    );
    assert_eq!(n.reply.code, 481);
    let mut a = ok(1, 600);
    a.headers[0].1 = format!("<{JANE}>;tag=n7");
    assert_eq!(
        w.answered(&key(), &out.call_id, Ok(&a), 1001),
        (Ok(()), None)
    );
    let refresh = w.due(1001 + 450, || ids(9)).requests.remove(0).1;
    assert_eq!(refresh.to, "<sip:jane@otherdomain.test>;tag=n7");
}

#[test]
fn notifies_outside_our_dialogs() {
    let (mut w, _) = table();
    assert_eq!(
        w.notify(
            &notify("other", "t1", "n1", "active", PIDF_OPEN),
            1,
            || ids(9)
        )
        .reply
        .code,
        481
    );
    assert_eq!(
        w.notify(
            &notify("c1@smsbridge", "t2", "n1", "active", PIDF_OPEN),
            1,
            || ids(9)
        )
        .reply
        .code,
        481
    );
    let mut wrong_event = notify("c1@smsbridge", "t1", "n1", "active", PIDF_OPEN);
    wrong_event.push_header("Event", "dialog".into());
    // The first Event header counts: still presence. A request with only
    // another package is 489.
    assert_eq!(w.notify(&wrong_event, 1, || ids(9)).reply.code, 200);
    let text = "NOTIFY sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKx\r\n\
                From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=t1\r\nCall-ID: c1@smsbridge\r\nCSeq: 1 NOTIFY\r\n\
                Event: dialog\r\nSubscription-State: active\r\nContent-Length: 0\r\n\r\n";
    let req = Request::parse(
        text.as_bytes(),
        "127.0.0.2:5060".parse().unwrap(),
        Transport::Udp,
    )
    .unwrap();
    assert_eq!(w.notify(&req, 1, || ids(9)).reply.code, 489);
    let text = text.replace(
        "Event: dialog\r\nSubscription-State: active\r\n",
        "Event: presence\r\n",
    );
    let req = Request::parse(
        text.as_bytes(),
        "127.0.0.2:5060".parse().unwrap(),
        Transport::Udp,
    )
    .unwrap();
    assert_eq!(w.notify(&req, 1, || ids(9)).reply.code, 400);
}

#[test]
fn an_unreadable_document_gives_no_news() {
    let (mut w, _) = table();
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n1", "active", "<presence>"),
        1,
        || ids(9),
    );
    assert_eq!((n.reply.code, n.news), (200, None));
}

#[test]
fn probation_resubscribes_after_retry_after_with_a_new_dialog() {
    let mut w = live();
    let n = w.notify(
        &notify(
            "c1@smsbridge",
            "t1",
            "n1",
            "terminated;reason=probation;retry-after=5",
            "",
        ),
        1010,
        || ids(2),
    );
    assert_eq!((n.reply.code, n.news), (200, None));
    assert!(w.due(1014, || ids(3)).requests.is_empty());
    let due = w.due(1015, || ids(3));
    let again = &due.requests[0].1;
    assert_eq!(
        (again.call_id.as_str(), again.from_tag.as_str(), again.cseq),
        ("c3@smsbridge", "t3", 1)
    );
    assert_eq!(again.request_uri, JANE);
    assert_eq!(again.to, "<sip:jane@otherdomain.test>");
    // noresource ends it for good.
    let (mut w, _) = table();
    let n = w.notify(
        &notify(
            "c1@smsbridge",
            "t1",
            "n1",
            "terminated;reason=noresource",
            "",
        ),
        1,
        || ids(2),
    );
    assert_eq!(
        n.news.unwrap().state,
        ForeignWatchState::Terminated("noresource".into())
    );
}

#[test]
fn unwatch_sends_expires_zero_and_swallows_the_last_notify() {
    let mut w = live();
    let (end, end_route) = w.unwatch(HARRY, JANE, 1100).unwrap();
    assert_eq!(end_route, route());
    assert_eq!(header(&end, "Expires"), ["0"]);
    assert_eq!(
        (end.cseq, end.to.as_str()),
        (2, "<sip:jane@otherdomain.test>;tag=n1")
    );
    assert_eq!(w.unwatch(HARRY, JANE, 1100), None);
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n1", "active", PIDF_OPEN),
        1101,
        || ids(9),
    );
    assert_eq!((n.reply.code, n.news), (200, None));
    let n = w.notify(
        &notify("c1@smsbridge", "t1", "n1", "terminated;reason=timeout", ""),
        1101,
        || ids(9),
    );
    assert_eq!((n.reply.code, n.news), (200, None));
    assert_eq!(w.len(), 0);
    // Without a final NOTIFY the entry goes after the grace period.
    let (mut w, _) = table();
    assert!(w.unwatch(HARRY, JANE, 1000).is_some());
    assert_eq!(w.due(1031, || ids(9)), Due::default());
    assert_eq!(w.len(), 1);
    assert_eq!(w.due(1032, || ids(9)), Due::default());
    assert_eq!(w.len(), 0);
}

#[test]
fn unwatch_all_ends_every_dialog() {
    let (mut w, _) = table();
    let other = w.watch(
        "sip:alice@sms.example",
        JANE,
        "sip:alice@sms.example",
        "c",
        route(),
        ids(2),
        1000,
    );
    assert!(matches!(other, Ok(Started::New(_))));
    let mut ended: Vec<String> = w
        .unwatch_all(1001)
        .into_iter()
        .map(|(o, _)| o.call_id)
        .collect();
    ended.sort();
    assert_eq!(ended, ["c1@smsbridge", "c2@smsbridge"]);
}

#[test]
fn the_table_is_capped() {
    let (mut w, _) = table();
    assert!(
        w.watch("sip:a@x", JANE, "sip:a@x", "c", route(), ids(2), 1)
            .is_ok()
    );
    assert!(matches!(
        w.watch("sip:b@x", JANE, "sip:b@x", "c", route(), ids(3), 1),
        Err(Refusal::Busy { .. })
    ));
}

#[test]
fn a_refused_first_subscribe_is_the_watch_s_answer() {
    let (mut w, out) = table();
    let no = status(404, 1);
    assert_eq!(
        w.answered(&key(), &out.call_id, Ok(&no), 1000),
        (Err(Refusal::UnknownRecipient(JANE.into())), None)
    );
    assert_eq!(w.len(), 0);
    let (mut w, out) = table();
    let (r, news) = w.answered(&key(), &out.call_id, Err("no route"), 1000);
    assert!(matches!(r, Err(Refusal::Busy { .. })), "{r:?}");
    assert_eq!((news, w.len()), (None, 0));
}

#[test]
fn a_failed_refresh_keeps_the_watch_until_it_runs_out() {
    let mut w = live();
    let refresh = w.due(1450, || ids(9)).requests.remove(0).1;
    let busy = status(503, refresh.cseq);
    let (r, news) = w.answered(&key(), &refresh.call_id, Ok(&busy), 1450);
    assert!(matches!(r, Err(Refusal::Busy { .. })) && news.is_none());
    // Tried again half-way to the end, then it runs out.
    assert_eq!(w.due(1525, || ids(9)).requests.len(), 1);
    assert_eq!(w.due(1631, || ids(9)), Due::default());
    let due = w.due(1632, || ids(9));
    assert_eq!(
        due.news[0].state,
        ForeignWatchState::Terminated("timeout".into())
    );
    assert_eq!(w.len(), 0);
    // 481: the dialog is gone at once.
    let mut w = live();
    let refresh = w.due(1450, || ids(9)).requests.remove(0).1;
    let gone = status(481, refresh.cseq);
    let (_, news) = w.answered(&key(), &refresh.call_id, Ok(&gone), 1450);
    assert_eq!(
        news.unwrap().state,
        ForeignWatchState::Terminated("SIP 481".into())
    );
    assert_eq!(w.len(), 0);
}
