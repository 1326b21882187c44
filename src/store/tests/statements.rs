//! The statement cache: what a group commit runs is compiled once, not on
//! every use.

use super::*;
use rusqlite::params;

/// Every statement the connection holds: its SQL, how often it ran, and how
/// often SQLite compiled it again.
fn statements(s: &Store) -> Vec<(String, i32, i32)> {
    use rusqlite::ffi;
    let mut out = Vec::new();
    // SAFETY: the handle belongs to `s`, which outlives this walk and runs
    // nothing meanwhile; each pointer comes from `sqlite3_next_stmt` on that
    // handle and is only read.
    unsafe {
        let db = s.conn.handle();
        let mut p = ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !p.is_null() {
            let sql = std::ffi::CStr::from_ptr(ffi::sqlite3_sql(p))
                .to_string_lossy()
                .into_owned();
            let runs = ffi::sqlite3_stmt_status(p, ffi::SQLITE_STMTSTATUS_RUN, 0);
            let again = ffi::sqlite3_stmt_status(p, ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
            out.push((sql, runs, again));
            p = ffi::sqlite3_next_stmt(db, p);
        }
    }
    out
}

/// Column `col` of every row of an EXPLAIN of a statement with parameters.
fn explain(s: &Store, sql: &str, col: usize) -> Vec<String> {
    let mut stmt = s.conn.prepare(sql).unwrap();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        out.push(r.get::<_, String>(col).unwrap());
    }
    out
}

#[test]
fn the_statements_of_a_submission_are_compiled_once() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let bob = num("+491701234567");
    for i in 0..4 {
        s.atomically(|st| {
            let user = st.user_by_address("sip:alice@example.com")?.unwrap();
            st.is_blocked(user.id, &bob)?;
            st.subscriber(&bob)?;
            st.messages_since(user.id, T0)?;
            st.count_messages(MessageState::Queued)?;
            st.enqueue(&new_message(alice, "+491701234567", &format!("hi {i}")), T0)
        })
        .unwrap();
    }
    let held = statements(&s);
    let ran: Vec<_> = held.iter().filter(|(_, runs, _)| *runs >= 4).collect();
    assert!(ran.len() >= 8, "{held:#?}");
    let compiled_again: Vec<_> = ran.iter().filter(|(_, _, again)| *again > 0).collect();
    assert!(compiled_again.is_empty(), "{compiled_again:#?}");
}

/// The constant `IN (...)` lists of three or more values in `sql`: SQLite
/// builds a temporary B-tree for each whenever it evaluates one.
fn long_in_lists(sql: &str) -> Vec<String> {
    let upper = sql.to_ascii_uppercase();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = upper[from..].find(" IN") {
        let start = from + at + 3;
        from = start;
        let rest = sql[start..].trim_start();
        let Some(list) = rest.strip_prefix('(') else {
            continue;
        };
        let Some(end) = list.find(')') else { break };
        let items: Vec<&str> = list[..end].split(',').map(str::trim).collect();
        let constant = items
            .iter()
            .all(|i| i.starts_with('\'') || i.parse::<i64>().is_ok());
        if constant && items.len() >= 3 {
            found.push(list[..end].to_owned());
        }
    }
    found
}

#[test]
fn no_check_or_partial_index_evaluates_a_long_in_list() {
    let s = mem();
    let schema = rows(
        &s,
        "SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    );
    assert!(schema.len() > 30, "{schema:?}");
    let long: Vec<_> = schema
        .iter()
        .flat_map(|(name, sql)| long_in_lists(sql).into_iter().map(move |l| (name, l)))
        .collect();
    assert!(long.is_empty(), "{long:#?}");
    // The scanner itself finds what it looks for.
    assert_eq!(
        long_in_lists("CHECK (state IN ('a', 'b',\n 'c')) AND x IN (1, 2) AND y IN (?1, 'a', 'b')"),
        ["'a', 'b',\n 'c'"]
    );
}

#[test]
fn queuing_a_message_builds_no_temporary_b_tree() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    s.enqueue(&new_message(alice, "+491701234567", "hi"), T0)
        .unwrap();
    let writes: Vec<String> = statements(&s)
        .into_iter()
        .map(|(sql, _, _)| sql)
        .filter(|sql| sql.starts_with("INSERT") || sql.starts_with("UPDATE"))
        .collect();
    assert!(
        writes.iter().any(|w| w.starts_with("INSERT INTO messages")),
        "{writes:#?}"
    );
    for sql in &writes {
        let ops = explain(&s, &format!("EXPLAIN {sql}"), 1);
        assert!(
            ops.iter().any(|o| o == "Insert" || o == "IdxInsert"),
            "{sql}: {ops:?}"
        );
        assert!(!ops.iter().any(|o| o == "OpenEphemeral"), "{sql}: {ops:?}");
    }
}

#[test]
fn the_rewritten_checks_still_refuse_what_they_refused() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let insert = |state: &str, alphabet: &str| {
        s.conn.execute(
            "INSERT INTO messages (subscriber_id, text, alphabet, front_end, report_requested, \
             imdn_positive, imdn_negative, part_count, state, created_at, updated_at) \
             VALUES (?1, 'x', ?2, 'sip', 0, 0, 0, 1, ?3, 0, 0)",
            params![1, alphabet, state],
        )
    };
    s.conn
        .execute(
            "INSERT INTO subscribers (id, msisdn, created_at) VALUES (1, '+491701234567', 0)",
            [],
        )
        .unwrap();
    for (state, alphabet) in [("queued", "sent"), ("sending", "gsm8"), ("bogus", "gsm7")] {
        let e = insert(state, alphabet).unwrap_err().to_string();
        assert!(
            e.contains("CHECK constraint failed"),
            "{state}/{alphabet}: {e}"
        );
    }
    for (state, alphabet) in [
        ("queued", "gsm7"),
        ("delivery_unknown", "ucs2"),
        ("sent", "8bit"),
    ] {
        insert(state, alphabet).unwrap();
    }
    let e = s
        .conn
        .execute(
            "INSERT INTO watchers (user_id, watcher, decision, since) VALUES (?1, 'x', 'maybe', 0)",
            [alice.0],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("CHECK constraint failed"), "{e}");
}

#[test]
fn a_version_9_file_gets_the_new_checks_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v9.db");
    old_file(
        &path,
        9,
        "INSERT INTO messages (id, user_id, subscriber_id, text, alphabet, front_end, \
         report_requested, imdn_positive, imdn_negative, part_count, state, created_at, \
         updated_at, notify_next_at) \
         VALUES (7, 1, 1, 'kept', 'gsm7', 'sip', 1, 1, 1, 1, 'delivered', 5, 5, 5);",
    );
    let s = Store::open(&path).unwrap();
    assert_eq!(q::<i64>(&s, "PRAGMA user_version"), schema::VERSION);
    let sql: String = q(&s, "SELECT sql FROM sqlite_schema WHERE name = 'messages'");
    assert!(
        sql.contains("alphabet = 'gsm7' OR alphabet = 'ucs2'"),
        "{sql}"
    );
    assert!(long_in_lists(&sql).is_empty(), "{sql}");
    assert_eq!(s.integrity_check().unwrap(), "ok");
    // The row is there, and its notice is still found through the partial index.
    let due = s.due_notices(UnixTime(10), 10).unwrap();
    assert_eq!(due.iter().map(|d| d.message.0).collect::<Vec<_>>(), [7]);
    let plan = explain(
        &s,
        &format!("EXPLAIN QUERY PLAN {}", notices::DUE_NOTICES),
        3,
    );
    assert!(
        plan[0].contains("USING INDEX messages_notice_due"),
        "{plan:?}"
    );
}
