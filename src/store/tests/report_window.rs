//! The end of the report window: parts whose status report never came end as
//! delivery unknown, with their messages, charging records and notifications;
//! and the V3 → V4 migration that made room for that state.

use super::*;

const WHY: &str = "no status report within 49h";

/// (state, last_error) of every part of `m`, in order.
fn parts_of(s: &Store, m: MessageId) -> Vec<(String, Option<String>)> {
    rows(
        s,
        &format!(
            "SELECT state, last_error FROM parts WHERE message_id = {} ORDER BY seq",
            m.0
        ),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// (seq, result, outcome, outcome_at) of every charging record, in order.
fn charging(s: &Store) -> Vec<(u8, String, Option<String>, Option<i64>)> {
    rows(
        s,
        "SELECT seq, result, outcome, outcome_at FROM charging_records ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

fn fail_cause(s: &Store, m: MessageId) -> Option<String> {
    s.conn
        .query_row(
            "SELECT fail_cause FROM messages WHERE id = ?1",
            [m.0],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_part_without_its_report_ends_delivery_unknown_after_the_window() {
    let (mut s, _, to, id) = long_message();
    send_all(&mut s, MODEM_A, 10, T0);
    s.apply_status_report(MODEM_A, &to, 10, None, delivered(), T0.plus(30))
        .unwrap()
        .unwrap();
    // Sent exactly at the cutoff: still waiting.
    assert_eq!(s.end_overdue_reports(T0, WHY, T0.plus(99)).unwrap(), []);
    assert_eq!(s.message(id).unwrap().unwrap().state, MessageState::Sent);
    assert_eq!(s.due_notices(T0.plus(99), 10).unwrap(), []);

    let now = T0.plus(100);
    assert_eq!(s.end_overdue_reports(T0.plus(1), WHY, now).unwrap(), [id]);
    assert_eq!(
        parts_of(&s, id),
        [
            ("delivered".to_owned(), None),
            ("delivery_unknown".to_owned(), Some(WHY.to_owned()))
        ]
    );
    let m = s.message(id).unwrap().unwrap();
    assert_eq!(
        (m.state, m.last_error.as_deref(), m.parts_sent),
        (MessageState::DeliveryUnknown, Some(WHY), 2)
    );
    assert_eq!(fail_cause(&s, id).as_deref(), Some("delivery_unknown"));
    assert_eq!(
        charging(&s),
        [
            (
                1,
                "submitted".into(),
                Some("delivered".into()),
                Some(T0.0 + 30)
            ),
            (
                2,
                "submitted".into(),
                Some("delivery_unknown".into()),
                Some(now.0)
            )
        ]
    );
    let due = s.due_notices(now, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].message, due[0].state, due[0].cause),
        (
            id,
            MessageState::DeliveryUnknown,
            Some(FailureCause::DeliveryUnknown)
        )
    );
    assert_eq!(due[0].last_error.as_deref(), Some(WHY));
    s.mark_notified(id, now).unwrap();
    assert_eq!(s.due_notices(now, 10).unwrap(), []);

    // Final: a second sweep and a late report change nothing.
    assert_eq!(
        s.end_overdue_reports(T0.plus(1000), WHY, now.plus(1))
            .unwrap(),
        []
    );
    assert_eq!(
        s.apply_status_report(MODEM_A, &to, 11, None, delivered(), now.plus(2))
            .unwrap(),
        None
    );
    assert_eq!(
        s.message(id).unwrap().unwrap().state,
        MessageState::DeliveryUnknown
    );
}

#[test]
fn a_part_still_in_its_window_keeps_the_message_sent_until_it_ends() {
    let (mut s, _, to, id) = long_message();
    let first = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    s.part_sent(first.part, 1, T0).unwrap();
    let second = s.claim_next_part(MODEM_A, T0.plus(60)).unwrap().unwrap();
    s.part_sent(second.part, 2, T0.plus(60)).unwrap();

    assert_eq!(
        s.end_overdue_reports(T0.plus(1), WHY, T0.plus(90)).unwrap(),
        [],
        "the message is not final while part 2 may still be reported"
    );
    assert_eq!(s.message(id).unwrap().unwrap().state, MessageState::Sent);
    assert_eq!(fail_cause(&s, id), None);
    assert_eq!(s.due_notices(T0.plus(90), 10).unwrap(), []);

    // Part 2's report ends the message: delivery unknown, because of part 1.
    let r = s
        .apply_status_report(MODEM_A, &to, 2, None, delivered(), T0.plus(95))
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.message_state, r.newly_final),
        (MessageState::DeliveryUnknown, true)
    );
    assert_eq!(fail_cause(&s, id).as_deref(), Some("delivery_unknown"));
    assert_eq!(s.due_notices(T0.plus(95), 10).unwrap().len(), 1);
}

#[test]
fn a_failed_message_stays_failed_with_its_cause() {
    let (mut s, _, to, id) = long_message();
    send_all(&mut s, MODEM_A, 10, T0);
    let r = s
        .apply_status_report(MODEM_A, &to, 10, None, Status(0x41), T0.plus(5))
        .unwrap()
        .unwrap();
    assert!(r.failed() && r.newly_final);
    // Part 2 never gets its report: it ends, the message stays failed and is
    // not owed a second notification.
    assert_eq!(
        s.end_overdue_reports(T0.plus(1), WHY, T0.plus(100))
            .unwrap(),
        []
    );
    assert_eq!(s.message(id).unwrap().unwrap().state, MessageState::Failed);
    assert_eq!(fail_cause(&s, id).as_deref(), Some("rejected"));
    assert_eq!(
        parts_of(&s, id)[1],
        ("delivery_unknown".into(), Some(WHY.into()))
    );
    let outcomes: Vec<Option<String>> = charging(&s).into_iter().map(|c| c.2).collect();
    assert_eq!(
        outcomes,
        [Some("failed".into()), Some("delivery_unknown".into())]
    );
}

#[test]
fn a_message_without_a_report_request_ends_when_it_is_submitted() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let id = s
        .enqueue(
            &NewMessage {
                report_requested: false,
                ..new_message(alice, "+491701234567", LONG)
            },
            T0,
        )
        .unwrap();
    let p = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    assert_eq!(s.part_sent(p.part, 1, T0).unwrap(), MessageState::Sending);
    let p = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    assert_eq!(
        s.part_sent(p.part, 2, T0.plus(1)).unwrap(),
        MessageState::DeliveryUnknown
    );
    let why = Some("no status report was requested".to_owned());
    assert_eq!(
        parts_of(&s, id),
        [
            ("delivery_unknown".into(), why.clone()),
            ("delivery_unknown".into(), why)
        ]
    );
    assert_eq!(fail_cause(&s, id).as_deref(), Some("delivery_unknown"));
    assert_eq!(s.due_notices(T0.plus(1), 10).unwrap().len(), 1);
}

#[test]
fn the_sweep_reads_only_sent_parts_through_its_index() {
    let s = mem();
    let plan: Vec<String> = rows(
        &s,
        "EXPLAIN QUERY PLAN SELECT id, message_id, seq, modem_imsi FROM parts \
         WHERE state = 'sent' AND sent_at < 5 ORDER BY sent_at, id LIMIT 500",
        |r| r.get(3),
    );
    assert!(
        plan.iter().any(|p| p.contains("USING INDEX parts_sent_at")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
}

/// A V3 file with rows in every table the rebuild touches or that refers to
/// them, as a build before this one left it.
fn v3_file(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    for sql in &schema::MIGRATIONS[..3] {
        c.execute_batch(sql).unwrap();
    }
    c.pragma_update(None, "user_version", 3).unwrap();
    c.execute_batch(
        "PRAGMA foreign_keys = ON;
         INSERT INTO users (id, sip_aor, created_at) VALUES (1, 'sip:alice@example.com', 0);
         INSERT INTO subscribers (id, msisdn, created_at) VALUES (1, '+491701234567', 0);
         INSERT INTO contacts (user_id, subscriber_id, created_at) VALUES (1, 1, 0);
         INSERT INTO conversations (user_id, subscriber_id, modem_imsi, last_at)
             VALUES (1, 1, '262011234567890', 10);
         INSERT INTO messages (id, user_id, subscriber_id, text, alphabet, im_message_id, front_end,
             report_requested, imdn_positive, imdn_negative, part_count, state, modem_imsi,
             last_error, created_at, updated_at, fail_cause, notified_at, notify_attempts,
             notify_next_at)
         VALUES (7, 1, 1, 'two parts', 'gsm7', 'im-7', 'sip', 1, 1, 1, 2, 'sent',
                 '262011234567890', NULL, 0, 10, NULL, NULL, 0, 0),
                (8, 1, 1, 'failed', 'ucs2', NULL, 'imps', 1, 0, 1, 1, 'failed',
                 NULL, '+CMS ERROR: 500', 0, 11, 'not_sent', 11, 1, 0);
         INSERT INTO parts (id, message_id, seq, tpdu, state, modem_imsi, mr, attempts,
             next_attempt_at, claimed_at, sent_at, last_error, report_status, report_time,
             report_received_at)
         VALUES (70, 7, 1, x'0001', 'delivered', '262011234567890', 5, 1, 0, 1, 2, NULL, 0, 3, 4),
                (71, 7, 2, x'0002', 'sent', '262011234567890', 6, 1, 0, 1, 2, NULL, NULL, NULL, NULL),
                (80, 8, 1, x'0003', 'failed', NULL, NULL, 1, 0, 1, NULL, '+CMS ERROR: 500',
                 NULL, NULL, NULL);
         INSERT INTO charging_records (at, user_address, msisdn, modem_imsi, message_id, seq, mr,
             result, detail)
         VALUES (2, 'sip:alice@example.com', '+491701234567', '262011234567890', 7, 1, 5,
                 'submitted', NULL),
                (2, 'sip:alice@example.com', '+491701234567', '262011234567890', 7, 2, 6,
                 'submitted', NULL);
         INSERT INTO inbound (id, modem_imsi, sender, text, received_at, state, user_id,
             next_attempt_at)
         VALUES (1, '262011234567890', '+491701234567', 'hi', 5, 'pending', 1, 5);
         INSERT INTO inbox_pdus (modem_imsi, pdu, received_at, kind, sender, inbound_id,
             report_applied)
         VALUES ('262011234567890', x'07', 5, 'message', '+491701234567', 1, NULL),
                ('262011234567890', x'06', 4, 'status_report', '+491701234567', NULL, 1);",
    )
    .unwrap();
}

#[test]
fn v3_files_are_rebuilt_for_delivery_unknown_with_every_row_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    v3_file(&path);
    let mut s = Store::open(&path).unwrap();
    assert_eq!(q::<i64>(&s, "PRAGMA user_version"), schema::VERSION);
    assert_eq!(q::<i64>(&s, "PRAGMA foreign_keys"), 1, "on again");
    assert_eq!(s.integrity_check().unwrap(), "ok");
    assert_eq!(
        q::<i64>(&s, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );

    // Rows, ids and every column kept.
    let messages = rows(
        &s,
        "SELECT id, state, im_message_id, front_end, last_error, fail_cause, notified_at, \
         notify_attempts, alphabet FROM messages ORDER BY id",
        |r| {
            Ok(format!(
                "{}|{}|{:?}|{}|{:?}|{:?}|{:?}|{}|{}",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, String>(8)?,
            ))
        },
    );
    assert_eq!(
        messages,
        [
            "7|sent|Some(\"im-7\")|sip|None|None|None|0|gsm7",
            "8|failed|None|imps|Some(\"+CMS ERROR: 500\")|Some(\"not_sent\")|Some(11)|1|ucs2"
        ]
    );
    let parts = rows(
        &s,
        "SELECT id, message_id, seq, hex(tpdu), state, mr, sent_at, report_status, report_time, \
         report_received_at FROM parts ORDER BY id",
        |r| {
            Ok(format!(
                "{}|{}|{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}",
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, Option<i64>>(8)?,
                r.get::<_, Option<i64>>(9)?,
            ))
        },
    );
    assert_eq!(
        parts,
        [
            "70|7|1|0001|delivered|Some(5)|Some(2)|Some(0)|Some(3)|Some(4)",
            "71|7|2|0002|sent|Some(6)|Some(2)|None|None|None",
            "80|8|1|0003|failed|None|None|None|None|None"
        ]
    );
    assert_eq!(
        charging(&s),
        [
            (1, "submitted".into(), None, None),
            (2, "submitted".into(), None, None)
        ]
    );
    // V5: the records of older files are IM → SMS.
    assert_eq!(
        q::<String>(&s, "SELECT group_concat(direction) FROM charging_records"),
        "im_to_sms,im_to_sms"
    );
    let others: (i64, i64, i64, i64) = s
        .conn
        .query_row(
            "SELECT (SELECT count(*) FROM inbound), (SELECT count(*) FROM inbox_pdus), \
             (SELECT count(*) FROM conversations), (SELECT count(*) FROM contacts)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(others, (1, 2, 1, 1));

    // Every index is back, and the new one is there.
    let indexes = rows(
        &s,
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('messages', 'parts') \
         AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(
        indexes,
        [
            "messages_by_foreign_sender",
            "messages_by_state",
            "messages_by_user",
            "messages_notice_due",
            "parts_awaiting_report",
            "parts_queued",
            "parts_sending",
            "parts_sent_at"
        ]
    );

    // The constraints hold: unknown states are refused, the new one is taken,
    // a part must belong to a message, and deleting a message takes its parts.
    let bad_state = s
        .conn
        .execute("UPDATE messages SET state = 'lost' WHERE id = 7", []);
    assert!(bad_state.is_err());
    let bad_part = s
        .conn
        .execute("UPDATE parts SET state = 'gone' WHERE id = 71", []);
    assert!(bad_part.is_err());
    let orphan = s.conn.execute(
        "INSERT INTO parts (message_id, seq, tpdu, state, next_attempt_at) \
         VALUES (99, 1, x'00', 'queued', 0)",
        [],
    );
    assert!(orphan.is_err());
    let bad_outcome = s
        .conn
        .execute("UPDATE charging_records SET outcome = 'maybe'", []);
    assert!(bad_outcome.is_err());

    // And the migrated rows take part in the new rule: part 71 never got its
    // report, so the message ends delivery unknown.
    assert_eq!(
        s.end_overdue_reports(UnixTime(3), WHY, UnixTime(1000))
            .unwrap(),
        [MessageId(7)]
    );
    assert_eq!(
        charging(&s)[1],
        (
            2,
            "submitted".into(),
            Some("delivery_unknown".into()),
            Some(1000)
        )
    );
    s.conn
        .execute("DELETE FROM messages WHERE id = 8", [])
        .unwrap();
    assert_eq!(
        q::<i64>(&s, "SELECT count(*) FROM parts WHERE message_id = 8"),
        0
    );
}

#[test]
fn a_migration_that_would_break_a_reference_is_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.db");
    v3_file(&path);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        // With foreign keys off (another tool, or a hand edit) such a row can
        // be left behind.
        c.pragma_update(None, "foreign_keys", false).unwrap();
        c.execute(
            "INSERT INTO parts (message_id, seq, tpdu, state, next_attempt_at) \
             VALUES (99, 1, x'00', 'queued', 0)",
            [],
        )
        .unwrap();
    }
    let e = Store::open(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot migrate the database: a row of parts refers to a row that does not exist"
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3, "nothing of the migration was committed");
}
