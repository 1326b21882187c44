//! The bridge's decisions seen from outside, against `smsbridge run` as a
//! process with the simulated modem on a PTY: limits that hold exactly under
//! concurrent requests (each decision is one transaction), a status report
//! whose apply step failed that is applied, and notified, after a restart, and
//! a status report that never comes, ended by the report window.

mod daemon_support;
mod sim_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use daemon_support::{DOMAIN, Daemon, SipMsg, Ua, add_user, cpim, next_imdn, write_config};
use sim_support::{SimProcess, TempDir, eventually};

const BOB: &str = "+4915112345678";

/// Sends one MESSAGE per `(user, text)` from its own UDP socket, all released
/// at once, and returns the final responses in the same order.
fn burst(server: std::net::SocketAddr, requests: Vec<(String, String)>) -> Vec<SipMsg> {
    let gate = Arc::new(Barrier::new(requests.len()));
    let threads: Vec<_> = requests
        .into_iter()
        .map(|(user, text)| {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                let mut ua = Ua::new(&user, "secret", server);
                ua.timeout = Duration::from_secs(30);
                gate.wait();
                ua.message(&format!("sip:bob@{DOMAIN}"), "text/plain", &text)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("request thread"))
        .collect()
}

fn by_status(replies: &[SipMsg]) -> BTreeMap<u16, usize> {
    let mut m = BTreeMap::new();
    for r in replies {
        *m.entry(r.status()).or_default() += 1;
    }
    m
}

fn db_count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open db");
    conn.query_row(sql, [], |r| r.get(0)).expect("query")
}

/// Waits for the one message's notification to be recorded as sent.
fn assert_notified_once(db: &Path) {
    let recorded = eventually(Duration::from_secs(10), || {
        (db_count(
            db,
            "SELECT count(*) FROM messages WHERE notified_at IS NOT NULL",
        ) == 1)
            .then_some(())
    });
    assert!(recorded.is_some(), "notification not recorded as sent");
}

fn user(config: &Path, name: &str) -> String {
    let aor = format!("sip:{name}@{DOMAIN}");
    add_user(config, &aor, "secret", &[(BOB, "Bob", "bob")]);
    aor
}

#[test]
fn forty_concurrent_messages_from_one_user_with_a_limit_of_ten_get_exactly_ten_202() {
    let dir = TempDir::new("decisions-rate");
    let sim = SimProcess::start(dir.path(), &[]);
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    // `users add` gives the default limit: 10 messages a minute.
    let alice = user(&config, "alice");
    let daemon = Daemon::start(dir.path(), config, db.clone(), sip, status);
    let replies = burst(
        sip,
        (0..40)
            .map(|i| (alice.clone(), format!("burst {i}")))
            .collect(),
    );
    let counts = by_status(&replies);
    assert_eq!(
        counts,
        BTreeMap::from([(202, 10), (503, 30)]),
        "{}",
        daemon.log()
    );
    for r in replies.iter().filter(|r| r.status() == 503) {
        assert_eq!(r.header("Retry-After"), Some("60"), "{r:?}");
        assert!(
            r.header("Warning")
                .is_some_and(|w| w.contains("rate limit of 10 messages per minute")),
            "{r:?}"
        );
    }
    assert_eq!(db_count(&db, "SELECT count(*) FROM messages"), 10);
    // Every accepted one goes out, once.
    assert!(daemon_support::wait_sent(&sim, 10, Duration::from_secs(30)));
    drop(daemon);
    assert_eq!(sim.sent().len(), 10);
}

#[test]
fn queue_limit_holds_exactly_for_several_users_at_once() {
    let dir = TempDir::new("decisions-queue");
    // One modem that takes 30 s per SMS: the first message keeps it busy, so
    // everything accepted afterwards stays queued while the burst runs.
    let sim = SimProcess::start(dir.path(), &["--send-delay", "30s"]);
    let (config, db, sip, status) =
        write_config(dir.path(), &[&sim.port], "[bridge]\nqueue_limit = 12\n");
    let users: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|u| user(&config, u))
        .collect();
    let mut daemon = Daemon::start(dir.path(), config, db.clone(), sip, status);
    let mut first = Ua::new(&users[0], "secret", sip);
    let r = first.message(&format!("sip:bob@{DOMAIN}"), "text/plain", "first");
    assert_eq!(r.status(), 202, "{r:?}");
    let on_air = eventually(Duration::from_secs(20), || {
        (db_count(&db, "SELECT count(*) FROM messages WHERE state = 'sending'") == 1).then_some(())
    });
    assert!(on_air.is_some(), "the first message was not claimed");
    // 29 requests from three users, each under their own rate limit of 10.
    let requests: Vec<(String, String)> = (0..29)
        .map(|i| (users[i % 3].clone(), format!("queued {i}")))
        .collect();
    let replies = burst(sip, requests);
    assert_eq!(
        by_status(&replies),
        BTreeMap::from([(202, 12), (503, 17)]),
        "{}",
        daemon.log()
    );
    for r in replies.iter().filter(|r| r.status() == 503) {
        assert_eq!(r.header("Retry-After"), Some("120"), "{r:?}");
        assert!(
            r.header("Warning")
                .is_some_and(|w| w.contains("12 messages are waiting for a modem")),
            "{r:?}"
        );
    }
    assert_eq!(
        db_count(&db, "SELECT count(*) FROM messages WHERE state = 'queued'"),
        12
    );
    assert_eq!(db_count(&db, "SELECT count(*) FROM messages"), 13);
    // The 30 s send would hold up a graceful stop; nothing more to see here.
    daemon.kill9();
}

#[test]
fn a_report_whose_apply_failed_is_applied_and_notified_after_a_restart() {
    let dir = TempDir::new("decisions-report");
    let sim = SimProcess::start(dir.path(), &["--report-delay", "300ms"]);
    let (config, db, sip, status) = write_config(dir.path(), &[&sim.port], "");
    let alice = user(&config, "alice");
    // The apply step of every status report fails in this run.
    let mut daemon = Daemon::start_with_env(
        dir.path(),
        config.clone(),
        db.clone(),
        sip,
        status,
        &[("SMSBRIDGE_FAILPOINTS", "report-apply")],
    );
    let mut ua = Ua::new(&alice, "secret", sip);
    assert_eq!(ua.register(600).status(), 200);
    let to = format!("sip:{BOB}@{DOMAIN}");
    let r = ua.message(
        &to,
        "message/cpim",
        &cpim(&to, "imdn-crash-1", "are you there?"),
    );
    assert_eq!(r.status(), 202, "{r:?}");
    // The report arrives and is stored raw, unapplied; the message stays "sent".
    let stored = eventually(Duration::from_secs(30), || {
        (db_count(
            &db,
            "SELECT count(*) FROM inbox_pdus WHERE kind = 'status_report' \
             AND report_applied IS NULL AND error LIKE '%failpoint report-apply%'",
        ) == 1)
            .then_some(())
    });
    assert!(
        stored.is_some(),
        "report not stored; log:\n{}",
        daemon.log()
    );
    assert_eq!(
        db_count(&db, "SELECT count(*) FROM messages WHERE state = 'sent'"),
        1
    );
    daemon.kill9();

    let restarted = Daemon::start(dir.path(), config, db.clone(), sip, status);
    // The sweep at start-up applies it: the message is delivered...
    let applied = eventually(Duration::from_secs(30), || {
        (db_count(
            &db,
            "SELECT count(*) FROM messages WHERE state = 'delivered'",
        ) == 1)
            .then_some(())
    });
    assert!(applied.is_some(), "not applied; log:\n{}", restarted.log());
    assert_eq!(
        db_count(
            &db,
            "SELECT count(*) FROM inbox_pdus WHERE kind = 'status_report' AND report_applied = 1"
        ),
        1
    );
    // ...and the IMDN it owes reaches alice once she is registered again
    // (registrations do not survive a restart).
    assert_eq!(ua.register(600).status(), 200);
    let imdn = next_imdn(&ua);
    assert!(
        imdn.body.contains("<message-id>imdn-crash-1</message-id>"),
        "{}",
        imdn.body
    );
    assert!(imdn.body.contains("<delivered/>"), "{}", imdn.body);
    assert_notified_once(&db);
    // Sent once to the network, whatever happened in between.
    assert_eq!(sim.sent().len(), 1);
}

fn db_text(db: &Path, sql: &str) -> String {
    let conn = rusqlite::Connection::open(db).expect("open db");
    conn.query_row(sql, [], |r| r.get(0)).expect("query")
}

#[test]
fn a_report_that_never_comes_ends_delivery_unknown_after_the_window() {
    let dir = TempDir::new("decisions-no-report");
    let phone = format!("{BOB}=no-report");
    let sim = SimProcess::start(dir.path(), &["--phone", &phone]);
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        "[bridge]\nreport_window = \"4s\"\n",
    );
    let alice = user(&config, "alice");
    let daemon = Daemon::start(dir.path(), config, db.clone(), sip, status);
    let mut ua = Ua::new(&alice, "secret", sip);
    assert_eq!(ua.register(600).status(), 200);
    let to = format!("sip:{BOB}@{DOMAIN}");
    let r = ua.message(&to, "message/cpim", &cpim(&to, "imdn-lost-1", "hello?"));
    assert_eq!(r.status(), 202, "{r:?}");
    assert!(
        daemon_support::wait_sent(&sim, 1, Duration::from_secs(30)),
        "{}",
        daemon.log()
    );

    // alice is told: the negative notification she asked for (the default).
    let imdn = next_imdn(&ua);
    assert!(
        imdn.body.contains("<message-id>imdn-lost-1</message-id>"),
        "{}",
        imdn.body
    );
    assert!(
        imdn.body
            .contains("<delivery-notification><status><failed/></status></delivery-notification>"),
        "{}",
        imdn.body
    );

    // The rows: the part, the message and its charging record say why, and
    // not before the window was over.
    assert_eq!(
        db_text(&db, "SELECT state || '|' || last_error FROM parts"),
        "delivery_unknown|no status report within 4s"
    );
    assert_eq!(
        db_text(
            &db,
            "SELECT state || '|' || fail_cause || '|' || last_error FROM messages"
        ),
        "delivery_unknown|delivery_unknown|no status report within 4s"
    );
    assert!(
        db_count(
            &db,
            "SELECT m.updated_at - p.sent_at FROM messages m JOIN parts p ON p.message_id = m.id"
        ) > 4
    );
    assert_eq!(
        db_text(&db, "SELECT result || '|' || outcome FROM charging_records"),
        "submitted|delivery_unknown"
    );
    assert_eq!(
        db_count(
            &db,
            "SELECT outcome_at - (SELECT sent_at FROM parts) FROM charging_records"
        ),
        db_count(
            &db,
            "SELECT m.updated_at - p.sent_at FROM messages m JOIN parts p ON p.message_id = m.id"
        )
    );
    assert_notified_once(&db);
    // Sent once (the bridge tests show the notice is sent once, too).
    assert_eq!(sim.sent().len(), 1);
}
