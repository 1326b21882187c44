//! The inbox: raw PDUs, duplicates, reassembly (also across a restart), expiry,
//! and the store-and-forward state of inbound messages.

use super::*;

const TEXT: &str = "A reply long enough to be cut into three parts by the sender's phone, which happens all the time when people write more than a few words, as this one does, on and on, until the third part.";

#[test]
fn a_single_sms_becomes_one_pending_message_once() {
    let mut s = mem();
    let pdu = &deliver_pdus("+491701234567", "Hi there", 0, 1)[0];
    let r = s.receive_pdu(MODEM_A, pdu, T0).unwrap();
    let Received::Message(id) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        s.receive_pdu(MODEM_A, pdu, T0.plus(1)).unwrap(),
        Received::Duplicate
    );
    // The same bytes through another modem are another SMS.
    assert!(matches!(
        s.receive_pdu(MODEM_B, pdu, T0).unwrap(),
        Received::Message(_)
    ));
    let m = s.inbound(id).unwrap().unwrap();
    assert_eq!(
        (m.sender.as_str(), m.text.as_str()),
        ("+491701234567", "Hi there")
    );
    assert_eq!(
        (m.state, m.incomplete, m.modem_imsi.as_str()),
        (InboundState::Pending, false, MODEM_A)
    );
    assert_eq!(
        m.sent_at,
        Some(UnixTime::parse("2026-05-01T12:00:01Z").unwrap())
    );
    let raw: Vec<u8> = q(&s, "SELECT pdu FROM inbox_pdus WHERE id = 1");
    assert_eq!(&raw, pdu);
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM inbox_pdus"), 2);
    assert_eq!(s.pending_inbound(T0).unwrap().len(), 2);
}

#[test]
fn parts_in_any_order_make_one_message() {
    let mut s = mem();
    let parts = deliver_pdus("+491701234567", TEXT, 0x1234 & 0xff, 2);
    assert_eq!(parts.len(), 2);
    let parts = deliver_pdus("+491701234567", &format!("{TEXT} {TEXT}"), 0x34, 2);
    assert_eq!(parts.len(), 3);
    assert_eq!(
        s.receive_pdu(MODEM_A, &parts[2], T0).unwrap(),
        Received::Waiting { have: 1, of: 3 }
    );
    assert_eq!(
        s.receive_pdu(MODEM_A, &parts[0], T0).unwrap(),
        Received::Waiting { have: 2, of: 3 }
    );
    // The same part again: with other bytes (a resend) and the very same bytes.
    let mut resent = parts[0].clone();
    let last = resent.len() - 1;
    resent[last] ^= 0x01;
    assert_eq!(
        s.receive_pdu(MODEM_A, &resent, T0).unwrap(),
        Received::DuplicatePart
    );
    assert_eq!(
        s.receive_pdu(MODEM_A, &parts[0], T0).unwrap(),
        Received::Duplicate
    );
    let Received::Message(id) = s.receive_pdu(MODEM_A, &parts[1], T0.plus(5)).unwrap() else {
        panic!()
    };
    let m = s.inbound(id).unwrap().unwrap();
    assert_eq!(m.text, format!("{TEXT} {TEXT}"));
    assert!(!m.incomplete);
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM reassembly"), 0);
    assert_eq!(
        q::<i64>(
            &s,
            &format!(
                "SELECT count(*) FROM inbox_pdus WHERE inbound_id = {}",
                id.0
            )
        ),
        3
    );
    assert_eq!(s.pending_inbound(T0.plus(5)).unwrap().len(), 1);
}

#[test]
fn reassembly_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let parts = deliver_pdus("+491701234567", &format!("{TEXT} {TEXT}"), 9, 3);
    {
        let mut s = Store::open(&path).unwrap();
        s.receive_pdu(MODEM_A, &parts[0], T0).unwrap();
        s.receive_pdu(MODEM_A, &parts[1], T0).unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    let Received::Message(id) = s.receive_pdu(MODEM_A, &parts[2], T0.plus(60)).unwrap() else {
        panic!()
    };
    assert_eq!(
        s.inbound(id).unwrap().unwrap().text,
        format!("{TEXT} {TEXT}")
    );
}

#[test]
fn stale_parts_become_an_incomplete_message_never_a_silent_drop() {
    let mut s = mem();
    let parts = deliver_pdus("+491701234567", &format!("{TEXT} {TEXT}"), 9, 3);
    s.receive_pdu(MODEM_A, &parts[0], T0).unwrap();
    s.receive_pdu(MODEM_A, &parts[2], T0.plus(100)).unwrap();
    assert_eq!(s.next_reassembly_deadline(600).unwrap(), Some(T0.plus(700)));
    assert_eq!(s.expire_reassembly(T0.plus(699), 600).unwrap(), vec![]);
    let ids = s.expire_reassembly(T0.plus(700), 600).unwrap();
    assert_eq!(ids.len(), 1);
    let m = s.inbound(ids[0]).unwrap().unwrap();
    assert!(m.incomplete);
    let first = Pdu::decode(&parts[0]).unwrap();
    let third = Pdu::decode(&parts[2]).unwrap();
    let text = |p: &Pdu| p.tpdu.user_data().and_then(|u| u.body.text()).unwrap();
    assert_eq!(m.text, format!("{}[…]{}", text(&first), text(&third)));
    assert_eq!(s.next_reassembly_deadline(600).unwrap(), None);
    // A late part 2 now starts a new collection rather than vanishing.
    assert_eq!(
        s.receive_pdu(MODEM_A, &parts[1], T0.plus(800)).unwrap(),
        Received::Waiting { have: 1, of: 3 }
    );
    let ids = s.expire_reassembly(T0.plus(1400), 600).unwrap();
    let m = s.inbound(ids[0]).unwrap().unwrap();
    assert_eq!(
        m.text,
        format!("[…]{}[…]", text(&Pdu::decode(&parts[1]).unwrap()))
    );
}

#[test]
fn undecodable_reports_and_stored_submits_are_kept_raw() {
    let mut s = mem();
    let junk = [0x07, 0x91, 0x44, 0x77];
    let r = s.receive_pdu(MODEM_A, &junk, T0).unwrap();
    assert!(
        matches!(&r, Received::Undecodable(e) if e.contains("octet")),
        "{r:?}"
    );
    assert_eq!(
        s.receive_pdu(MODEM_A, &junk, T0).unwrap(),
        Received::Duplicate
    );
    let report =
        pdu::from_hex("07914875215652F006360B914892347527F3817003018104808170030181448000")
            .unwrap();
    let r = s.receive_pdu(MODEM_A, &report, T0).unwrap();
    assert!(
        matches!(&r, Received::StatusReport(_, sr) if sr.mr == 0x36),
        "{r:?}"
    );
    let submit = &submit_parts("+491701234567", "stored", 0)[0];
    assert_eq!(s.receive_pdu(MODEM_A, submit, T0).unwrap(), Received::Other);
    let kinds: Vec<String> = rows(&s, "SELECT kind FROM inbox_pdus ORDER BY id", |r| r.get(0));
    assert_eq!(kinds, ["undecodable", "status_report", "other"]);
    let err: String = q(
        &s,
        "SELECT error FROM inbox_pdus WHERE kind = 'undecodable'",
    );
    assert!(!err.is_empty());
    assert!(s.pending_inbound(T0).unwrap().is_empty());
}

#[test]
fn national_senders_are_read_with_the_default_country_code() {
    let mut s = mem();
    s.set_default_country_code(Some("49".into()));
    let pdu = &deliver_pdus("01701234567", "national", 0, 1)[0];
    let Received::Message(id) = s.receive_pdu(MODEM_A, pdu, T0).unwrap() else {
        panic!()
    };
    assert_eq!(s.inbound(id).unwrap().unwrap().sender, "+491701234567");
    let pdu = &deliver_pdus("12345", "short code", 0, 1)[0];
    let Received::Message(id) = s.receive_pdu(MODEM_A, pdu, T0).unwrap() else {
        panic!()
    };
    assert_eq!(s.inbound(id).unwrap().unwrap().sender, "12345");
}

#[test]
fn store_and_forward_states() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let mut ids = Vec::new();
    for (i, text) in ["one", "two", "three", "four"].iter().enumerate() {
        let pdu = &deliver_pdus("+491701234567", text, 0, i as u8)[0];
        let Received::Message(id) = s.receive_pdu(MODEM_A, pdu, T0).unwrap() else {
            panic!()
        };
        ids.push(id);
    }
    s.mark_inbound_retry(ids[0], Some(alice), T0.plus(30), "user offline")
        .unwrap();
    s.mark_inbound_delivered(ids[1], alice, T0).unwrap();
    s.mark_inbound_failed(ids[2], "no user to route to", T0.plus(40))
        .unwrap();
    s.mark_inbound_expired(ids[3], "held 7 days", T0.plus(40))
        .unwrap();
    assert!(s.pending_inbound(T0.plus(29)).unwrap().is_empty());
    let due = s.pending_inbound(T0.plus(30)).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].id, due[0].attempts, due[0].user),
        (ids[0], 1, Some(alice))
    );
    assert_eq!(due[0].last_error.as_deref(), Some("user offline"));
    let m = s.inbound(ids[1]).unwrap().unwrap();
    assert_eq!(
        (m.state, m.user, m.attempts),
        (InboundState::Delivered, Some(alice), 1)
    );
    assert_eq!(
        s.inbound(ids[2]).unwrap().unwrap().state,
        InboundState::Failed
    );
    assert_eq!(
        s.inbound(ids[3]).unwrap().unwrap().state,
        InboundState::Expired
    );
    let e = s.mark_inbound_delivered(ids[1], alice, T0).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("inbound message {} is delivered, not pending", ids[1].0)
    );
    let e = s.mark_inbound_failed(InboundId(999), "x", T0).unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }));
}

/// One sender's messages to one user stay in order: while the first waits
/// for its retry, the second is not due either, however its own time says.
#[test]
fn a_later_message_of_a_sender_waits_for_an_earlier_one() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let mut sms = |text: &str| {
        let pdu = &deliver_pdus("+491701234567", text, 0, 1)[0];
        match s.receive_pdu(MODEM_A, pdu, T0).unwrap() {
            Received::Message(id) => id,
            other => panic!("{other:?}"),
        }
    };
    let (first, second) = (sms("one"), sms("two"));
    s.mark_inbound_retry(first, Some(alice), T0.plus(30), "offline")
        .unwrap();
    s.mark_inbound_retry(second, Some(alice), T0.plus(1), "offline")
        .unwrap();
    assert!(s.pending_inbound(T0.plus(10)).unwrap().is_empty());
    let due = s.pending_inbound(T0.plus(30)).unwrap();
    assert_eq!(
        due.iter().map(|m| m.id).collect::<Vec<_>>(),
        [first, second]
    );
}
