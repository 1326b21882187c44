//! The file: migrations, permissions, and what happens when it cannot be
//! written (read-only, full, locked) or is used by two workers at once.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;

use super::*;

#[test]
fn an_empty_file_is_migrated_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    let s = Store::open(&path).unwrap();
    assert_eq!(q::<i64>(&s, "PRAGMA user_version"), schema::VERSION);
    assert_eq!(q::<String>(&s, "PRAGMA journal_mode"), "wal");
    assert_eq!(q::<i64>(&s, "PRAGMA synchronous"), 2); // FULL
    assert_eq!(q::<i64>(&s, "PRAGMA foreign_keys"), 1);
    let tables: i64 = q(
        &s,
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
    );
    assert_eq!(tables, 17); // V2 added im_contacts and contact_lists, V6 foreign_contacts,
    // V7 presence_rules and watchers, V9 message_counts
    drop(s);
    // Opening again changes nothing.
    let s = Store::open(&path).unwrap();
    assert_eq!(q::<i64>(&s, "PRAGMA user_version"), schema::VERSION);
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::NewerSchema { found: 99, .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "database schema version 99 is newer than this smsbridge understands (at most {}); upgrade smsbridge",
            schema::VERSION
        )
    );
    assert!(!e.is_temporary());
}

#[test]
fn the_file_and_its_wal_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let mut s = Store::open(&path).unwrap();
    add_alice(&mut s);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("private.db-wal")), 0o600);
    assert_eq!(mode(&dir.path().join("private.db-shm")), 0o600);
}

/// A file database with one user and one queued message.
fn file_store(dir: &tempfile::TempDir) -> (std::path::PathBuf, UserId) {
    let path = dir.path().join("smsbridge.db");
    let mut s = Store::open(&path).unwrap();
    let alice = add_alice(&mut s);
    s.enqueue(&new_message(alice, "+491701234567", "before"), T0)
        .unwrap();
    (path, alice)
}

fn counts(s: &Store) -> (i64, i64, i64) {
    (
        q(s, "SELECT count(*) FROM messages"),
        q(s, "SELECT count(*) FROM parts"),
        q(s, "SELECT count(*) FROM subscribers"),
    )
}

#[test]
fn a_read_only_database_is_a_permanent_error_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (path, alice) = file_store(&dir);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let enforced = std::fs::OpenOptions::new().write(true).open(&path).is_err();
    if enforced {
        // Refused at open, with why, rather than at the first write.
        let e = Store::open(&path).unwrap_err();
        assert!(!e.is_temporary() && e.is_unusable(), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "cannot open the database {}: the file is read-only",
                path.display()
            )
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // A file that became read-only under an open connection (or, for root,
    // who ignores file modes): SQLite refuses writes (SQLITE_READONLY).
    let mut s = Store::open(&path).unwrap();
    s.conn.pragma_update(None, "query_only", true).unwrap();
    let before = counts(&s);
    let e = s
        .enqueue(&new_message(alice, "+491709999999", "after"), T0)
        .unwrap_err();
    assert!(!e.is_temporary() && e.is_unusable(), "{e:?}");
    assert_eq!(
        e.to_string(),
        "cannot write the database: it is read-only (the file, its directory or the file system)"
    );
    let e = s.claim_next_part(MODEM_A, T0).unwrap_err();
    assert!(e.is_unusable(), "{e:?}");
    assert_eq!(counts(&s), before);
    assert_eq!(
        q::<i64>(&s, "SELECT count(*) FROM parts WHERE state = 'queued'"),
        1
    );
}

#[test]
fn a_full_disk_fails_the_enqueue_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (path, alice) = file_store(&dir);
    let mut s = Store::open(&path).unwrap();
    let pages: i64 = q(&s, "PRAGMA page_count");
    // SQLITE_FULL once the file would grow past a few more pages.
    let _: i64 = s
        .conn
        .query_row(&format!("PRAGMA max_page_count = {}", pages + 3), [], |r| {
            r.get(0)
        })
        .unwrap();
    let big = "x".repeat(150).repeat(30);
    let mut accepted = 0;
    let err = loop {
        match s.enqueue(&new_message(alice, "+491701234567", &big), T0) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "the page limit never hit");
    };
    assert!(err.is_unusable() && !err.is_temporary(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot write the database: the disk is full"
    );
    // Every message that is there has all its parts: nothing half-written.
    let (messages, parts, _) = counts(&s);
    assert_eq!(messages, 1 + accepted);
    let expected: i64 = q(&s, "SELECT sum(part_count) FROM messages");
    assert_eq!(parts, expected);
    assert_eq!(s.integrity_check().unwrap(), "ok");
    // Room again: the same call succeeds.
    let _: i64 = s
        .conn
        .query_row("PRAGMA max_page_count = 1000000", [], |r| r.get(0))
        .unwrap();
    s.enqueue(&new_message(alice, "+491701234567", &big), T0)
        .unwrap();
}

#[test]
fn a_lock_held_past_the_busy_timeout_is_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let (path, alice) = file_store(&dir);
    let mut holder = Store::open(&path).unwrap();
    let mut s = Store::open(&path).unwrap();
    s.conn
        .busy_timeout(std::time::Duration::from_millis(50))
        .unwrap();
    let tx = holder
        .conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let e = s
        .enqueue(&new_message(alice, "+491701234567", "blocked"), T0)
        .unwrap_err();
    assert!(e.is_temporary(), "{e:?}");
    // Readers are not blocked by a writer in WAL mode.
    assert_eq!(s.messages(None).unwrap().len(), 1);
    drop(tx);
    s.enqueue(&new_message(alice, "+491701234567", "free"), T0)
        .unwrap();
}

#[test]
fn two_workers_never_claim_the_same_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let mut s = Store::open(&path).unwrap();
    let alice = add_alice(&mut s);
    let texts = ["short", &"long ".repeat(40), &"longer ".repeat(60)];
    let mut expected = 0;
    for i in 0..150 {
        let m = new_message(alice, &format!("+4917012345{:02}", i % 100), texts[i % 3]);
        expected += m.parts.len();
        s.enqueue(&m, T0).unwrap();
    }
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let workers: Vec<_> = [MODEM_A, MODEM_B]
        .into_iter()
        .map(|modem| {
            let path = path.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                let mut s = Store::open(&path).unwrap();
                start.wait();
                let mut got = Vec::new();
                while let Some(p) = s.claim_next_part(modem, T0).unwrap() {
                    // The modem's AT+CMGS takes a while; without it one thread can
                    // win every lock race (SQLite's busy handler sleeps).
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    s.part_sent(p.part, (got.len() % 256) as u8, T0).unwrap();
                    got.push(p.part);
                }
                got
            })
        })
        .collect();
    let claimed: Vec<Vec<PartId>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let a: HashSet<_> = claimed[0].iter().collect();
    let b: HashSet<_> = claimed[1].iter().collect();
    assert_eq!(a.len(), claimed[0].len(), "worker A got a part twice");
    assert_eq!(b.len(), claimed[1].len(), "worker B got a part twice");
    assert!(
        a.is_disjoint(&b),
        "both workers claimed {:?}",
        a.intersection(&b)
    );
    assert_eq!(a.len() + b.len(), expected, "some parts were never claimed");
    println!("worker A claimed {}, worker B {}", a.len(), b.len());
    assert!(
        !a.is_empty() && !b.is_empty(),
        "one worker did everything: no race tested"
    );
    assert_eq!(
        q::<i64>(&s, "SELECT count(*) FROM parts WHERE state = 'sent'"),
        expected as i64
    );
    // Each message's parts all went out through one modem.
    let mut modems: HashMap<i64, HashSet<String>> = HashMap::new();
    let mut stmt = s
        .conn
        .prepare("SELECT message_id, modem_imsi FROM parts")
        .unwrap();
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap() {
        let (m, modem): (i64, String) = row.unwrap();
        modems.entry(m).or_default().insert(modem);
    }
    assert!(
        modems.values().all(|m| m.len() == 1),
        "a message was split over modems"
    );
}
