//! The outbox: enqueue, claim, results, outcome-unknown policy, status reports,
//! charging records.

use super::*;

#[test]
fn enqueue_commits_the_message_and_its_parts() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let m = new_message(alice, "0170 1234567", LONG);
    assert_eq!(m.parts.len(), 2);
    let id = s.enqueue(&m, T0).unwrap();
    let sum = s.message(id).unwrap().unwrap();
    assert_eq!(sum.state, MessageState::Queued);
    assert_eq!(sum.msisdn.as_str(), "+491701234567");
    assert_eq!((sum.parts, sum.parts_sent, sum.attempts), (2, 0, 0));
    assert_eq!(sum.user.as_deref(), Some("sip:alice@example.com"));
    assert_eq!(sum.text, LONG);
    let (text, alphabet, im): (String, String, String) = s
        .conn
        .query_row(
            "SELECT text, alphabet, im_message_id FROM messages",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((text.as_str(), alphabet.as_str()), (LONG, "gsm7"));
    assert_eq!(im, format!("im-{LONG}"));
    let tpdus: Vec<Vec<u8>> = rows(
        &s,
        "SELECT tpdu FROM parts WHERE state = 'queued' ORDER BY seq",
        |r| r.get(0),
    );
    assert_eq!(tpdus, m.parts);

    let e = s
        .enqueue(
            &NewMessage {
                parts: vec![],
                ..m.clone()
            },
            T0,
        )
        .unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    let e = s
        .enqueue(
            &NewMessage {
                user: UserId(99),
                ..m
            },
            T0,
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::UnknownUser(_)));
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM messages"), 1);
}

#[test]
fn enqueue_with_takes_the_reference_in_the_same_transaction() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let m = new_message(alice, "+491701234567", LONG);
    let to = m.msisdn.clone();
    let mut seen = None;
    let id = s
        .enqueue_with(&to, T0, |r| {
            seen = Some(r);
            Ok(m.clone())
        })
        .unwrap();
    assert_eq!(seen, Some(0));
    assert_eq!(s.message(id).unwrap().unwrap().state, MessageState::Queued);
    // A failing build leaves nothing behind, not even a used reference.
    let e = s
        .enqueue_with(&to, T0, |_| Err(StoreError::InvalidInput("no".into())))
        .unwrap_err();
    assert!(e.is_bad_input());
    assert_eq!(s.next_concat_reference(&to, T0).unwrap(), 1);
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM messages"), 1);
    assert_eq!(s.count_messages(MessageState::Queued).unwrap(), 1);
    assert_eq!(s.count_messages(MessageState::Sent).unwrap(), 0);
}

#[test]
fn queued_parts_expire_and_fail_their_message_once() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let old = s
        .enqueue(&new_message(alice, "+491701234567", LONG), T0)
        .unwrap();
    let young = s
        .enqueue(&new_message(alice, "+491701234567", "hi"), T0.plus(3600))
        .unwrap();
    // One part of the old message went out before its modem vanished.
    let p = s.claim_next_part("imsi-a", T0.plus(10)).unwrap().unwrap();
    assert_eq!(p.message, old);
    s.part_sent(p.part, 7, T0.plus(11)).unwrap();
    let failed = s.expire_queued(T0.plus(1800), T0.plus(7200)).unwrap();
    assert_eq!(failed, vec![old]);
    assert_eq!(s.message(old).unwrap().unwrap().state, MessageState::Failed);
    assert_eq!(
        s.message(young).unwrap().unwrap().state,
        MessageState::Queued
    );
    assert_eq!(
        s.expire_queued(T0.plus(1800), T0.plus(7300)).unwrap(),
        vec![]
    );
}

#[test]
fn concat_references_count_per_recipient_and_wrap() {
    let mut s = mem();
    let (a, b) = (num("+491701111111"), num("+491702222222"));
    assert_eq!(s.next_concat_reference(&a, T0).unwrap(), 0);
    assert_eq!(s.next_concat_reference(&a, T0).unwrap(), 1);
    assert_eq!(s.next_concat_reference(&b, T0).unwrap(), 0);
    s.conn
        .execute("UPDATE concat_references SET next = 65535", [])
        .unwrap();
    assert_eq!(s.next_concat_reference(&a, T0).unwrap(), 65535);
    assert_eq!(s.next_concat_reference(&a, T0).unwrap(), 0);
}

#[test]
fn a_message_goes_queued_sending_sent_with_one_charging_record_per_part() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let id = s
        .enqueue(&new_message(alice, "+491701234567", LONG), T0)
        .unwrap();
    let p1 = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    assert_eq!((p1.message, p1.seq, p1.total, p1.attempt), (id, 1, 2, 1));
    assert_eq!(p1.msisdn.as_str(), "+491701234567");
    assert_eq!(s.message(id).unwrap().unwrap().state, MessageState::Sending);
    assert_eq!(
        s.part_sent(p1.part, 41, T0.plus(1)).unwrap(),
        MessageState::Sending
    );
    let p2 = s.claim_next_part(MODEM_A, T0.plus(1)).unwrap().unwrap();
    assert_eq!(p2.seq, 2);
    assert_eq!(
        s.part_sent(p2.part, 42, T0.plus(2)).unwrap(),
        MessageState::Sent
    );
    assert!(s.claim_next_part(MODEM_A, T0.plus(2)).unwrap().is_none());
    let sum = s.message(id).unwrap().unwrap();
    assert_eq!(
        (sum.parts_sent, sum.modem_imsi.as_deref()),
        (2, Some(MODEM_A))
    );
    let rows: Vec<(i64, String, i64, String)> = rows(
        &s,
        "SELECT seq, state, mr, modem_imsi FROM parts ORDER BY seq",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    );
    assert_eq!(
        rows,
        vec![
            (1, "sent".into(), 41, MODEM_A.into()),
            (2, "sent".into(), 42, MODEM_A.into())
        ]
    );
    let cdr = s.cdr_since(T0).unwrap();
    assert_eq!(cdr.len(), 2);
    assert_eq!(
        (
            cdr[1].direction,
            cdr[1].from.as_str(),
            cdr[1].to.as_deref(),
            cdr[1].modem_imsi.as_deref()
        ),
        (
            Direction::ImToSms,
            "sip:alice@example.com",
            Some("+491701234567"),
            Some(MODEM_A)
        )
    );
    assert_eq!(
        (cdr[1].seq, cdr[1].mr, cdr[1].result.as_str()),
        (Some(2), Some(42), "submitted")
    );
    assert_eq!(s.cdr_since(T0.plus(2)).unwrap().len(), 1);
    // Results for a part that is not being sent are a caller bug.
    let e = s.part_sent(p1.part, 1, T0).unwrap_err();
    assert!(matches!(e, StoreError::WrongState { .. }) && !e.is_bad_input());
}

#[test]
fn parts_of_a_started_message_stay_on_their_modem() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let first = s
        .enqueue(&new_message(alice, "+491701234567", LONG), T0)
        .unwrap();
    let second = s
        .enqueue(&new_message(alice, "+491707654321", "short"), T0)
        .unwrap();
    let a1 = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    assert_eq!((a1.message, a1.seq), (first, 1));
    // Modem B does not take part 2 of A's message: it takes the next message.
    let b1 = s.claim_next_part(MODEM_B, T0).unwrap().unwrap();
    assert_eq!(b1.message, second);
    assert!(s.claim_next_part(MODEM_B, T0).unwrap().is_none());
    let a2 = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    assert_eq!((a2.message, a2.seq), (first, 2));
}

#[test]
fn failures_retry_at_their_time_or_fail_the_message() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let id = s
        .enqueue(&new_message(alice, "+491701234567", LONG), T0)
        .unwrap();
    let p = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    let st = s
        .part_failed(p.part, "+CMS ERROR: 42", Retry::At(T0.plus(60)), T0)
        .unwrap();
    assert_eq!(st, MessageState::Queued);
    // Nothing left the modem, so the message is free for any modem again, but
    // not before its time.
    assert_eq!(s.message(id).unwrap().unwrap().modem_imsi, None);
    assert!(s.claim_next_part(MODEM_B, T0.plus(59)).unwrap().is_none());
    let again = s.claim_next_part(MODEM_B, T0.plus(60)).unwrap().unwrap();
    assert_eq!((again.part, again.attempt), (p.part, 2));
    let st = s
        .part_failed(again.part, "+CMS ERROR: 500", Retry::Never, T0.plus(61))
        .unwrap();
    assert_eq!(st, MessageState::Failed);
    let states: Vec<(String, String)> = rows(
        &s,
        "SELECT state, last_error FROM parts ORDER BY seq",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    assert_eq!(
        states,
        vec![
            ("failed".into(), "+CMS ERROR: 500".into()),
            ("failed".into(), "not sent: part 1 failed".into())
        ]
    );
    let sum = s.message(id).unwrap().unwrap();
    assert_eq!(sum.last_error.as_deref(), Some("+CMS ERROR: 500"));
    assert_eq!(sum.attempts, 2);
    let results: Vec<String> = s
        .cdr_since(T0)
        .unwrap()
        .into_iter()
        .map(|c| c.result)
        .collect();
    assert_eq!(results, ["failed", "failed"]);
    assert!(s.claim_next_part(MODEM_A, T0.plus(999)).unwrap().is_none());
}

#[test]
fn outcome_unknown_is_never_retried_until_a_policy_says_so() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let id = s
        .enqueue(&new_message(alice, "+491701234567", LONG), T0)
        .unwrap();
    let p = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    assert_eq!(
        s.part_outcome_unknown(p.part, T0).unwrap(),
        MessageState::OutcomeUnknown
    );
    // Neither the unknown part nor the rest of its message is handed out.
    assert!(s.claim_next_part(MODEM_A, T0.plus(3600)).unwrap().is_none());
    assert_eq!(
        s.messages(Some(MessageState::OutcomeUnknown))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.requeue_unknown(id, T0.plus(10)).unwrap(), 1);
    let again = s.claim_next_part(MODEM_A, T0.plus(10)).unwrap().unwrap();
    assert_eq!((again.part, again.attempt), (p.part, 2));
    s.part_outcome_unknown(again.part, T0.plus(11)).unwrap();
    assert_eq!(s.fail_unknown(id, T0.plus(12)).unwrap(), 1);
    let sum = s.message(id).unwrap().unwrap();
    assert_eq!(sum.state, MessageState::Failed);
    assert_eq!(
        q::<i64>(&s, "SELECT count(*) FROM parts WHERE state = 'failed'"),
        2
    );
    let results: Vec<String> = s
        .cdr_since(T0)
        .unwrap()
        .into_iter()
        .map(|c| c.result)
        .collect();
    assert_eq!(results, ["unknown", "unknown"]);
}

#[test]
fn a_restarting_worker_turns_its_claims_into_outcome_unknown() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let a = s
        .enqueue(&new_message(alice, "+491701234567", "a"), T0)
        .unwrap();
    let b = s
        .enqueue(&new_message(alice, "+491701234568", "b"), T0)
        .unwrap();
    s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    s.claim_next_part(MODEM_B, T0).unwrap().unwrap();
    assert_eq!(s.release_claims(MODEM_A, T0.plus(1)).unwrap(), 1);
    assert_eq!(s.release_claims(MODEM_A, T0.plus(1)).unwrap(), 0);
    assert_eq!(
        s.message(a).unwrap().unwrap().state,
        MessageState::OutcomeUnknown
    );
    assert_eq!(
        s.message(a).unwrap().unwrap().last_error.as_deref(),
        Some("outcome unknown: the worker stopped while sending")
    );
    assert_eq!(s.message(b).unwrap().unwrap().state, MessageState::Sending);
    assert!(s.claim_next_part(MODEM_A, T0.plus(2)).unwrap().is_none());
}

#[test]
fn status_reports_deliver_when_every_part_is_delivered() {
    let (mut s, alice, to, id) = long_message();
    send_all(&mut s, MODEM_A, 10, T0);
    let dt = Some(T0.plus(30));
    // Wrong modem, wrong recipient, unknown MR: no match.
    assert_eq!(
        s.apply_status_report(MODEM_B, &to, 10, dt, delivered(), T0.plus(31))
            .unwrap(),
        None
    );
    assert_eq!(
        s.apply_status_report(MODEM_A, &num("+491700000000"), 10, dt, delivered(), T0)
            .unwrap(),
        None
    );
    assert_eq!(
        s.apply_status_report(MODEM_A, &to, 99, dt, delivered(), T0)
            .unwrap(),
        None
    );
    // Still trying is recorded, not final.
    let r = s
        .apply_status_report(MODEM_A, &to, 11, dt, Status::SME_BUSY, T0.plus(31))
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.seq, r.outcome, r.newly_final),
        (2, pdu::Outcome::StillTrying, false)
    );
    let r = s
        .apply_status_report(MODEM_A, &to, 10, dt, delivered(), T0.plus(32))
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.message, r.seq, r.message_state, r.newly_final),
        (id, 1, MessageState::Sent, false)
    );
    assert_eq!(r.im_message_id, Some(format!("im-{LONG}")));
    assert_eq!(
        (r.user, r.front_end, r.imdn_positive),
        (Some(alice), FrontEnd::Sip, true)
    );
    // A second report for a part that already has its final one matches nothing.
    assert_eq!(
        s.apply_status_report(MODEM_A, &to, 10, dt, delivered(), T0.plus(33))
            .unwrap(),
        None
    );
    let r = s
        .apply_status_report(MODEM_A, &to, 11, dt, delivered(), T0.plus(34))
        .unwrap()
        .unwrap();
    assert!(r.all_delivered() && r.newly_final && !r.failed());
    let (st, tm): (i64, i64) = s
        .conn
        .query_row(
            "SELECT report_status, report_time FROM parts WHERE seq = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((st, tm), (0, T0.0 + 30));
}

#[test]
fn one_failed_report_fails_the_message_once() {
    let (mut s, _, to, _) = long_message();
    send_all(&mut s, MODEM_A, 200, T0);
    let r = s
        .apply_status_report(
            MODEM_A,
            &to,
            201,
            None,
            Status::VALIDITY_EXPIRED,
            T0.plus(5),
        )
        .unwrap()
        .unwrap();
    assert!(r.failed() && r.newly_final);
    let r = s
        .apply_status_report(MODEM_A, &to, 200, None, delivered(), T0.plus(6))
        .unwrap()
        .unwrap();
    assert!(r.failed() && !r.newly_final);
    let err: String = q(&s, "SELECT last_error FROM messages");
    assert_eq!(err, "status report: TP-ST 0x46");
}

#[test]
fn reports_match_the_newest_part_inside_the_window() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let to = num("+491701234567");
    let old = s
        .enqueue(&new_message(alice, "+491701234567", "old"), T0)
        .unwrap();
    send_all(&mut s, MODEM_A, 7, T0);
    let new = s
        .enqueue(&new_message(alice, "+491701234567", "new"), T0.plus(100))
        .unwrap();
    send_all(&mut s, MODEM_A, 7, T0.plus(100));
    let r = s
        .apply_status_report(MODEM_A, &to, 7, None, delivered(), T0.plus(200))
        .unwrap()
        .unwrap();
    assert_eq!(r.message, new);
    // The old part was sent more than 72 hours before this report.
    let late = T0.plus(REPORT_WINDOW_SECS + 1);
    assert_eq!(
        s.apply_status_report(MODEM_A, &to, 7, None, delivered(), late)
            .unwrap(),
        None
    );
    let r = s
        .apply_status_report(MODEM_A, &to, 7, None, delivered(), T0.plus(300))
        .unwrap()
        .unwrap();
    assert_eq!(r.message, old);
}

#[test]
fn queue_listing_filters_by_state_and_counts_per_user() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    s.enqueue(&new_message(alice, "+491701234567", "a"), T0)
        .unwrap();
    s.enqueue(&new_message(alice, "+491701234567", "b"), T0.plus(70))
        .unwrap();
    let p = s.claim_next_part(MODEM_A, T0.plus(70)).unwrap().unwrap();
    s.part_sent(p.part, 1, T0.plus(70)).unwrap();
    assert_eq!(s.messages(None).unwrap().len(), 2);
    let sent = s.messages(Some(MessageState::Sent)).unwrap();
    assert_eq!((sent.len(), sent[0].text.as_str()), (1, "a"));
    assert_eq!(s.messages_since(alice, T0).unwrap(), 2);
    assert_eq!(s.messages_since(alice, T0.plus(10)).unwrap(), 1);
    assert_eq!(
        MessageState::parse("outcome_unknown"),
        Some(MessageState::OutcomeUnknown)
    );
    assert_eq!(MessageState::parse("lost"), None);
}

#[test]
fn a_decoded_status_report_is_applied_by_its_recipient_and_mr() {
    let mut s = mem();
    s.set_default_country_code(Some("49".into()));
    let alice = add_alice(&mut s);
    let id = s
        .enqueue(&new_message(alice, "+491701234567", "hi"), T0)
        .unwrap();
    send_all(&mut s, MODEM_A, 0x36, T0);
    let report = pdu::StatusReport {
        more_messages: false,
        loop_prevention: false,
        qualifier_command: false,
        mr: 0x36,
        // As some networks write it: national, without the country code.
        recipient: pdu::Address::from_number("01701234567").unwrap(),
        scts: scts(10),
        discharge_time: scts(12),
        status: delivered(),
        pid: None,
        dcs: None,
        user_data: None,
    };
    let r = s
        .apply_report(MODEM_A, &report, T0.plus(20))
        .unwrap()
        .unwrap();
    assert_eq!((r.message, r.newly_final), (id, true));
    let t: i64 = q(&s, "SELECT report_time FROM parts");
    assert_eq!(UnixTime(t).to_string(), "2026-05-01T12:00:12Z");

    // Type of number "unknown" but with the country code (4917…), as some
    // service centres write it: matched as international.
    let id2 = s
        .enqueue(&new_message(alice, "+491701234567", "again"), T0.plus(30))
        .unwrap();
    send_all(&mut s, MODEM_A, 0x37, T0.plus(30));
    let report = pdu::StatusReport {
        mr: 0x37,
        recipient: pdu::Address::from_number("491701234567").unwrap(),
        ..report
    };
    let r = s
        .apply_report(MODEM_A, &report, T0.plus(40))
        .unwrap()
        .unwrap();
    assert_eq!(r.message, id2);
}

/// Each state's count as the triggers keep it, next to `count(*)`.
fn counts_agree(s: &Store) {
    for st in [
        MessageState::Queued,
        MessageState::Sending,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Failed,
        MessageState::OutcomeUnknown,
    ] {
        let counted: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM messages WHERE state = ?1",
                [st.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            s.count_messages(st).unwrap(),
            usize::try_from(counted).unwrap(),
            "{st:?}"
        );
    }
}

/// The per-state counts follow messages queued, sent, failed and deleted,
/// and a file from before the counts gets them right at its first open.
#[test]
fn message_counts_follow_every_change_and_are_made_for_old_files() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let old = s
        .enqueue(&new_message(alice, "+491701234567", LONG), T0)
        .unwrap();
    for i in 0..3 {
        s.enqueue(
            &new_message(alice, "+491701234567", "hi"),
            T0.plus(3600 + i),
        )
        .unwrap();
    }
    assert_eq!(s.count_messages(MessageState::Queued).unwrap(), 4);
    let p = s.claim_next_part("imsi-a", T0.plus(10)).unwrap().unwrap();
    s.part_sent(p.part, 7, T0.plus(11)).unwrap();
    counts_agree(&s);
    assert_eq!(
        s.expire_queued(T0.plus(1800), T0.plus(7200)).unwrap(),
        vec![old]
    );
    counts_agree(&s);
    assert_eq!(s.count_messages(MessageState::Failed).unwrap(), 1);
    s.conn
        .execute("DELETE FROM messages WHERE id = ?1", [old.0])
        .unwrap();
    counts_agree(&s);
    assert_eq!(s.count_messages(MessageState::Failed).unwrap(), 0);
    assert_eq!(s.count_messages(MessageState::Queued).unwrap(), 3);

    // A V8 file with messages in it: V9 counts what is there.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v8.db");
    old_file(
        &path,
        8,
        "INSERT INTO messages (id, user_id, subscriber_id, text, alphabet, front_end,
             report_requested, imdn_positive, imdn_negative, part_count, state,
             created_at, updated_at)
         VALUES (7, 1, 1, 'a', 'gsm7', 'sip', 0, 0, 0, 1, 'queued', 0, 1),
                (8, 1, 1, 'b', 'gsm7', 'sip', 0, 0, 0, 1, 'queued', 0, 1),
                (9, 1, 1, 'c', 'gsm7', 'sip', 0, 0, 0, 1, 'delivered', 0, 1);",
    );
    let s = Store::open(&path).unwrap();
    assert_eq!(q::<i64>(&s, "PRAGMA user_version"), schema::VERSION);
    counts_agree(&s);
    assert_eq!(s.count_messages(MessageState::Queued).unwrap(), 2);
    assert_eq!(s.count_messages(MessageState::Delivered).unwrap(), 1);
}
