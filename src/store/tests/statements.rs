//! The statement cache: what a group commit runs is compiled once, not on
//! every use.

use super::*;

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
