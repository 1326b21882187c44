//! `Store::atomically`: a decision's reads and writes in one transaction, and
//! status reports stored and applied together.

use super::*;
use crate::pdu;

fn count(s: &Store, sql: &str) -> i64 {
    q(s, sql)
}

#[test]
fn everything_inside_commits_together() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let (a, b) = s
        .atomically(|s| {
            let a = s.enqueue(&new_message(alice, "+491701234567", "one"), T0)?;
            let b = s.enqueue(&new_message(alice, "+491701234568", "two"), T0)?;
            Ok((a, b))
        })
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(count(&s, "SELECT count(*) FROM messages"), 2);
}

#[test]
fn an_error_inside_rolls_back_every_call_made_inside() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let r: Result<(), StoreError> = s.atomically(|s| {
        s.enqueue(&new_message(alice, "+491701234567", "one"), T0)?;
        Err(StoreError::InvalidInput("refused after the write".into()))
    });
    assert!(r.is_err());
    assert_eq!(count(&s, "SELECT count(*) FROM messages"), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM parts"), 0);
    // The connection is usable afterwards, outside any transaction.
    s.enqueue(&new_message(alice, "+491701234567", "two"), T0)
        .unwrap();
    assert_eq!(count(&s, "SELECT count(*) FROM messages"), 1);
}

#[test]
fn a_failed_call_inside_leaves_the_rest_of_the_transaction_to_the_caller() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    s.atomically(|s| {
        s.enqueue(&new_message(alice, "+491701234567", "kept"), T0)?;
        // Refused (no parts): its savepoint rolls back, nothing else does.
        let mut empty = new_message(alice, "+491701234567", "x");
        empty.parts.clear();
        assert!(s.enqueue(&empty, T0).is_err());
        Ok(())
    })
    .unwrap();
    let texts: Vec<String> = rows(&s, "SELECT text FROM messages", |r| r.get(0));
    assert_eq!(texts, ["kept"]);
}

#[test]
fn a_panic_inside_rolls_back_and_leaves_the_connection_usable() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = s.atomically(|s| -> Result<(), StoreError> {
            s.enqueue(&new_message(alice, "+491701234567", "one"), T0)?;
            panic!("decision panicked");
        });
    }));
    assert!(caught.is_err());
    assert_eq!(count(&s, "SELECT count(*) FROM messages"), 0);
    s.enqueue(&new_message(alice, "+491701234567", "two"), T0)
        .unwrap();
    assert_eq!(count(&s, "SELECT count(*) FROM messages"), 1);
}

#[test]
fn nested_calls_join_the_outer_transaction() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let r: Result<(), StoreError> = s.atomically(|s| {
        s.atomically(|s| s.enqueue(&new_message(alice, "+491701234567", "inner"), T0))?;
        Err(StoreError::InvalidInput("outer refuses".into()))
    });
    assert!(r.is_err());
    assert_eq!(
        count(&s, "SELECT count(*) FROM messages"),
        0,
        "the inner write went with the outer rollback"
    );
}

#[test]
fn a_second_connection_waits_for_the_decision_to_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut one = Store::open(&path).unwrap();
    let alice = add_alice(&mut one);
    let mut two = Store::open(&path).unwrap();
    // While `one` holds its IMMEDIATE transaction, `two` cannot write; with
    // no busy wait it says so at once instead of interleaving.
    two.conn.busy_timeout(std::time::Duration::ZERO).unwrap();
    one.atomically(|one| {
        let seen = one.messages_since(alice, T0.plus(-60))?;
        assert_eq!(seen, 0);
        let e = two
            .enqueue(&new_message(alice, "+491701234567", "racer"), T0)
            .unwrap_err();
        assert!(e.is_temporary(), "{e}");
        one.enqueue(&new_message(alice, "+491701234567", "decided"), T0)?;
        Ok(())
    })
    .unwrap();
    let texts: Vec<String> = rows(&two, "SELECT text FROM messages", |r| r.get(0));
    assert_eq!(texts, ["decided"]);
}

/// A delivered report for MR 0x36 to +84294357723.
fn report_pdu() -> Vec<u8> {
    pdu::from_hex("07914875215652F006360B914892347527F3817003018104808170030181448000").unwrap()
}

#[test]
fn a_report_whose_apply_failed_is_offered_again_not_swallowed_as_a_duplicate() {
    let mut s = mem();
    let raw = report_pdu();
    // Stored, but the apply step never ran (it failed, or the process stopped).
    let first = s.receive_pdu(MODEM_A, &raw, T0).unwrap();
    let Received::StatusReport(id, _) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        s.unapplied_reports()
            .unwrap()
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        [id]
    );
    // Read again from the modem: still a report to apply, same row.
    let again = s.receive_pdu(MODEM_A, &raw, T0.plus(5)).unwrap();
    assert!(matches!(again, Received::StatusReport(i, ref r) if i == id && r.mr == 0x36));
    s.mark_report_applied(id, false).unwrap();
    assert!(s.unapplied_reports().unwrap().is_empty());
    // Once applied, the same bytes are a duplicate.
    assert_eq!(
        s.receive_pdu(MODEM_A, &raw, T0.plus(6)).unwrap(),
        Received::Duplicate
    );
    assert_eq!(count(&s, "SELECT count(*) FROM inbox_pdus"), 1);
    let applied: i64 = q(&s, "SELECT report_applied FROM inbox_pdus");
    assert_eq!(applied, 0, "matched no part");
}

#[test]
fn storing_and_applying_a_report_in_one_transaction_is_all_or_nothing() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let id = s
        .enqueue(&new_message(alice, "+84294357723", "hello"), T0)
        .unwrap();
    let claimed = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    s.part_sent(claimed.part, 0x36, T0).unwrap();
    let raw = report_pdu();
    // The apply step fails: neither the raw report nor its effect is kept.
    let r: Result<(), StoreError> = s.atomically(|s| {
        s.receive_pdu(MODEM_A, &raw, T0.plus(10))?;
        Err(StoreError::InvalidInput("apply failed".into()))
    });
    assert!(r.is_err());
    assert_eq!(count(&s, "SELECT count(*) FROM inbox_pdus"), 0);
    // Done again, it works, and the report row says it was applied.
    let outcome = s
        .atomically(|s| {
            let Received::StatusReport(rid, sr) = s.receive_pdu(MODEM_A, &raw, T0.plus(11))? else {
                return Err(StoreError::InvalidInput("not a report".into()));
            };
            let o = s.apply_report(MODEM_A, &sr, T0.plus(11))?;
            s.mark_report_applied(rid, o.is_some())?;
            Ok(o)
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        (outcome.message, outcome.message_state),
        (id, MessageState::Delivered)
    );
    assert_eq!(outcome.previous_state, MessageState::Sent);
    let applied: i64 = q(&s, "SELECT report_applied FROM inbox_pdus");
    assert_eq!(applied, 1);
}
