//! Failing, requeueing and purging by hand: rule 4 kept, and purge never
//! deleting what a report, a notification or a delivery still needs.

use super::*;

const DAY: i64 = 86_400;

/// Every row count purge looks at.
fn table_counts(s: &Store) -> [i64; 6] {
    [
        q(s, "SELECT count(*) FROM messages"),
        q(s, "SELECT count(*) FROM parts"),
        q(s, "SELECT count(*) FROM inbound"),
        q(s, "SELECT count(*) FROM inbox_pdus"),
        q(s, "SELECT count(*) FROM charging_records"),
        q(s, "SELECT count(*) FROM reassembly"),
    ]
}

#[test]
fn purge_deletes_only_what_is_over_and_told() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let to = "+491701234567";
    let enqueue = |s: &mut Store, text: &str| s.enqueue(&new_message(alice, to, text), T0).unwrap();

    // Delivered and its sender told: goes, with its part and charging record.
    let told = enqueue(&mut s, "told");
    send_all(&mut s, MODEM_A, 1, T0);
    s.apply_status_report(MODEM_A, &num(to), 1, None, delivered(), T0)
        .unwrap();
    s.mark_notified(told, T0).unwrap();
    // Delivered, but the sender was not told yet: stays (its record goes).
    let untold = enqueue(&mut s, "untold");
    send_all(&mut s, MODEM_A, 2, T0);
    s.apply_status_report(MODEM_A, &num(to), 2, None, delivered(), T0)
        .unwrap();
    // Submitted, its report still awaited: stays, with its record.
    let awaiting = enqueue(&mut s, "awaiting");
    send_all(&mut s, MODEM_A, 3, T0);
    // Refused by the network, told: goes, with its `failed` record.
    let refused = enqueue(&mut s, "refused");
    let p = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    s.part_failed(p.part, "+CMS ERROR: 500", Retry::Never, T0)
        .unwrap();
    s.mark_notified(refused, T0).unwrap();

    // Inbound: one delivered (goes, with its PDU), one pending (stays).
    let pdu = |text: &str, r: u16| deliver_pdus("+491709876543", text, r, 1).remove(0);
    let Received::Message(done) = s.receive_pdu(MODEM_A, &pdu("done", 1), T0).unwrap() else {
        panic!()
    };
    s.mark_inbound_delivered(done, alice, T0).unwrap();
    let Received::Message(pending) = s.receive_pdu(MODEM_A, &pdu("pending", 2), T0).unwrap() else {
        panic!()
    };
    // Half of a long SMS held for reassembly: stays.
    let first_half = deliver_pdus("+491709876543", LONG, 9, 1).remove(0);
    s.receive_pdu(MODEM_A, &first_half, T0).unwrap();
    // A status report stored and never applied: stays. One applied: goes.
    let report =
        pdu::from_hex("07914875215652F006360B914892347527F3817003018104808170030181448000")
            .unwrap();
    s.receive_pdu(MODEM_B, &report, T0).unwrap();
    let Received::StatusReport(applied, _) = s.receive_pdu(MODEM_A, &report, T0).unwrap() else {
        panic!()
    };
    s.mark_report_applied(applied, false).unwrap();

    let before = table_counts(&s);
    assert_eq!(before, [4, 4, 2, 5, 6, 1]);
    let later = T0.plus(30 * DAY);
    // Nothing is older than a cutoff before it all happened.
    assert_eq!(s.purge(T0, false).unwrap(), Purged::default());
    let dry = s.purge(later, true).unwrap();
    assert_eq!(table_counts(&s), before, "a dry run deletes nothing");
    let purged = s.purge(later, false).unwrap();
    assert_eq!(dry, purged);
    assert_eq!(
        purged,
        Purged {
            messages: 2,
            parts: 2,
            inbound: 1,
            inbox_pdus: 2,
            charging_records: 4,
        }
    );
    let ids = |sql| rows(&s, sql, |r| r.get::<_, i64>(0));
    assert_eq!(
        ids("SELECT id FROM messages ORDER BY id"),
        [untold.0, awaiting.0]
    );
    assert_eq!(
        ids("SELECT message_id FROM charging_records ORDER BY id"),
        [awaiting.0, pending.0],
        "a record still waiting for its outcome stays"
    );
    assert_eq!(ids("SELECT id FROM inbound"), [pending.0]);
    assert_eq!(
        rows(&s, "SELECT kind FROM inbox_pdus ORDER BY id", |r| r
            .get::<_, String>(0)),
        ["message", "part", "status_report"]
    );
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM reassembly"), 1);
    // What stayed still works: the report comes, the notice is due, the
    // pending message is delivered, the second half completes the SMS.
    s.apply_status_report(MODEM_A, &num(to), 3, None, delivered(), T0.plus(60))
        .unwrap();
    assert_eq!(
        s.message(awaiting).unwrap().unwrap().state,
        MessageState::Delivered
    );
    let due: Vec<MessageId> = s
        .due_notices(later, 10)
        .unwrap()
        .iter()
        .map(|n| n.message)
        .collect();
    assert_eq!(due, [untold, awaiting]);
    s.mark_inbound_delivered(pending, alice, later).unwrap();
    let second_half = deliver_pdus("+491709876543", LONG, 9, 1).remove(1);
    assert!(matches!(
        s.receive_pdu(MODEM_A, &second_half, later).unwrap(),
        Received::Message(_)
    ));
    assert_eq!(s.unapplied_reports().unwrap().len(), 1);
    assert_eq!(s.integrity_check().unwrap(), "ok");
    // Now that their outcomes are known, the old records of that part and of
    // the pending message may go too.
    let again = s.purge(later, false).unwrap();
    assert_eq!(
        again,
        Purged {
            charging_records: 2,
            ..Purged::default()
        }
    );
}

#[test]
fn a_part_that_may_have_left_is_requeued_only_when_asked() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let id = s
        .enqueue(&new_message(alice, "+491701234567", "x"), T0)
        .unwrap();
    let p = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    s.part_outcome_unknown(p.part, T0).unwrap();
    let e = s.requeue_message(id, false, false, T0).unwrap_err();
    assert!(e.is_bad_input(), "{e:?}");
    assert_eq!(
        s.message(id).unwrap().unwrap().state,
        MessageState::OutcomeUnknown
    );
    // Given up by the policy, it still may have left: still refused.
    s.fail_unknown(id, T0).unwrap();
    assert!(s.requeue_message(id, false, false, T0).is_err());
    assert_eq!(s.requeue_message(id, true, false, T0).unwrap(), 1);
    let m = s.message(id).unwrap().unwrap();
    assert_eq!((m.state, m.modem_imsi), (MessageState::Queued, None));
    // Its next outcome is notified afresh, with its own cause.
    assert!(s.due_notices(T0, 10).unwrap().is_empty());
    let p = s.claim_next_part(MODEM_B, T0).unwrap().unwrap();
    s.part_failed(p.part, "+CMS ERROR: 500", Retry::Never, T0)
        .unwrap();
    let due = s.due_notices(T0, 10).unwrap();
    assert_eq!(due[0].cause, Some(FailureCause::NotSent));
}

#[test]
fn failing_a_message_on_a_dead_modem_makes_its_notice_due() {
    let (mut s, _, _, id) = long_message();
    // Part 1 went out, part 2 is being sent when the modem dies.
    let p = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    s.part_sent(p.part, 1, T0).unwrap();
    s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    assert_eq!(s.messages_on_modem(MODEM_A).unwrap(), [id]);
    assert_eq!(
        s.fail_message(id, "modem gone", T0).unwrap(),
        MessageState::Failed
    );
    let due = s.due_notices(T0, 10).unwrap();
    assert_eq!(
        (due[0].message, due[0].cause),
        (id, Some(FailureCause::OutcomeUnknown))
    );
    assert_eq!(
        rows(
            &s,
            "SELECT seq, result FROM charging_records ORDER BY id",
            |r| Ok((r.get::<_, u8>(0)?, r.get::<_, String>(1)?))
        ),
        [(1, "submitted".to_owned()), (2, "unknown".to_owned())]
    );
    assert!(s.messages_on_modem(MODEM_A).unwrap().is_empty());
    let e = s.fail_message(id, "again", T0).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot fail message {}: it is failed already", id.0)
    );
}
