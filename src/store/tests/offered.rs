//! Messages handed to a client that has not confirmed them (IMPS store and
//! forward): pending until confirmed, held for the confirmation window, due
//! again at the next login, and confirmable only as the recipient's.

use super::*;

/// One pending SMS from Bob, routed to nobody yet.
fn one_sms(s: &mut Store) -> InboundId {
    let pdu = &deliver_pdus("+491701234567", "Are you there?", 0, 1)[0];
    match s.receive_pdu(MODEM_A, pdu, T0).unwrap() {
        Received::Message(id) => id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_offered_message_stays_pending_and_waits_for_the_window() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let id = one_sms(&mut s);
    assert!(
        s.mark_inbound_offered(id, alice, T0.plus(5), T0.plus(605))
            .unwrap()
    );
    let row: (String, i64, Option<i64>, i64, i64, String) = s
        .conn
        .query_row(
            "SELECT state, user_id, offered_at, next_attempt_at, attempts, last_error FROM inbound WHERE id = ?1",
            [id.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "pending".into(),
            alice.0,
            Some(T0.0 + 5),
            T0.0 + 605,
            1,
            "offered, not confirmed".into()
        )
    );
    // Not re-offered while the client may still confirm it…
    assert!(s.pending_inbound(T0.plus(604)).unwrap().is_empty());
    // …but after the window it is due again.
    assert_eq!(s.pending_inbound(T0.plus(605)).unwrap().len(), 1);
}

#[test]
fn an_offered_message_is_due_again_at_the_next_login() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let id = one_sms(&mut s);
    s.mark_inbound_offered(id, alice, T0, T0.plus(600)).unwrap();
    assert!(s.pending_inbound(T0.plus(10)).unwrap().is_empty());
    assert_eq!(s.inbound_due_for(alice, T0.plus(10)).unwrap(), 1);
    let due = s.pending_inbound(T0.plus(10)).unwrap();
    assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), [id]);
    assert_eq!(due[0].state, InboundState::Pending);
}

#[test]
fn only_the_recipient_may_confirm_and_only_while_pending() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let mallory = add_sip_user(&mut s, "sip:mallory@example.com");
    let id = one_sms(&mut s);
    // Not routed yet: nobody's.
    assert_eq!(s.pending_inbound_of(id, alice).unwrap(), None);
    s.mark_inbound_offered(id, alice, T0, T0.plus(600)).unwrap();
    assert_eq!(s.pending_inbound_of(id, mallory).unwrap(), None);
    assert_eq!(
        s.pending_inbound_of(id, alice).unwrap().map(|m| m.id),
        Some(id)
    );
    s.mark_inbound_delivered(id, alice, T0.plus(3)).unwrap();
    assert_eq!(s.pending_inbound_of(id, alice).unwrap(), None);
    // A late offer bookkeeping after the confirmation changes nothing.
    assert!(
        !s.mark_inbound_offered(id, alice, T0.plus(4), T0.plus(604))
            .unwrap()
    );
    assert_eq!(
        q::<String>(
            &s,
            &format!("SELECT state FROM inbound WHERE id = {}", id.0)
        ),
        "delivered"
    );
}
