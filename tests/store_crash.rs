//! Crash test (rule 3): a child process enqueues messages as fast as it can and
//! prints each message id after its commit; the parent kills it with SIGKILL in
//! the middle of the burst. Every acknowledged message must then be present and
//! intact, nothing may be half-written, and the file must pass integrity_check.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use smsbridge::pdu::{Body, Pdu, Tpdu, join_text};
use smsbridge::store::Store;

/// The text `smsbridge store-stress enqueue` gives message `n` (its contract).
fn stress_text(n: u64) -> String {
    format!("stress message {n}: {}", "0123456789".repeat(20))
}

/// Starts a burst and kills it after `after` acknowledgements. Returns the
/// acknowledged (message id, n) pairs, including any still in the pipe.
fn burst_and_kill(db: &std::path::Path, after: usize) -> Vec<(i64, u64)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smsbridge"))
        .arg("--db")
        .arg(db)
        .args(["store-stress", "enqueue", "--count", "1000000"])
        .env_remove("SMSBRIDGE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smsbridge store-stress");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acks = Vec::new();
    let parse = |l: String| {
        let (id, n) = l.split_once(' ').expect("ack line");
        (id.parse::<i64>().unwrap(), n.parse::<u64>().unwrap())
    };
    for line in lines.by_ref() {
        acks.push(parse(line.unwrap()));
        if acks.len() == after {
            break;
        }
    }
    // std's Child::kill is SIGKILL on Unix: no destructor, no flush, no rollback.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child finished before it was killed");
    // Acknowledgements written before the kill are still in the pipe.
    acks.extend(lines.map_while(Result::ok).map(parse));
    acks
}

#[test]
fn every_acknowledged_enqueue_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut acked_total = 0;
    for (round, after) in [40, 250, 700].into_iter().enumerate() {
        let acks = burst_and_kill(&db, after);
        acked_total += acks.len();

        let store = Store::open(&db).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let conn = rusqlite::Connection::open(&db).unwrap();
        for &(id, n) in &acks {
            let (text, parts, im): (String, i64, String) = conn
                .query_row(
                    "SELECT text, part_count, im_message_id FROM messages WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap_or_else(|e| panic!("acknowledged message {id} (n={n}) is missing: {e}"));
            assert_eq!(text, stress_text(n), "message {id}");
            assert_eq!(im, format!("stress-{n}"));
            let tpdus: Vec<Vec<u8>> = conn
                .prepare("SELECT tpdu FROM parts WHERE message_id = ?1 AND state = 'queued' ORDER BY seq")
                .unwrap()
                .query_map([id], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(tpdus.len() as i64, parts, "message {id} lost parts");
            assert_eq!(parts, 2);
            let bodies: Vec<Body> = tpdus
                .iter()
                .map(|t| match Pdu::decode(t).unwrap().tpdu {
                    Tpdu::Submit(s) => s.user_data.body,
                    other => panic!("part of {id} is not a SUBMIT: {other:?}"),
                })
                .collect();
            assert_eq!(
                join_text(&bodies),
                text,
                "message {id}: parts do not spell the text"
            );
        }
        // Nothing half-written, acknowledged or not: every message has all its parts.
        let torn: i64 = conn
            .query_row(
                "SELECT count(*) FROM messages m WHERE part_count != \
                 (SELECT count(*) FROM parts p WHERE p.message_id = m.id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(torn, 0, "half-written messages");
        let present: i64 = conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        println!(
            "round {round}: acknowledged {} (total {acked_total}), present {present}, committed but unacknowledged {}",
            acks.len(),
            present - acked_total as i64
        );
        assert!(present >= acked_total as i64);
        assert!(
            present <= acked_total as i64 + round as i64 + 1,
            "more than one unacknowledged commit per kill"
        );
    }
}
