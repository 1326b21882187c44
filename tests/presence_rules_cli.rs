//! `smsbridge users presence-rules`: a user's access policy shown, replaced
//! and cleared by the operator, with the watchers it decides, run as a
//! process and checked by exact output and the rows left behind.

mod cli_support;

use cli_support::{Db, failure};
use smsbridge::bridge::api::{SubHandling, WatchDecision, WatcherMatch};
use smsbridge::store::UnixTime;

const ALICE: &str = "sip:alice@example.com";

#[test]
fn rules_are_replaced_in_order_and_known_watchers_decided_again() {
    let db = Db::new();
    db.ok(&["users", "add", ALICE]);
    let alice = db.store().user_by_address(ALICE).unwrap().unwrap().id;
    db.store()
        .record_watcher(
            alice,
            "wv:harry@example.com",
            WatchDecision::Pending,
            UnixTime(7),
        )
        .unwrap();
    assert_eq!(
        db.ok(&["users", "presence-rules", ALICE]),
        "RULE  HANDLING  WHO\n\
         WATCHER               DECISION  SINCE\n\
         wv:harry@example.com  pending   7\n"
    );
    let out = db.ok(&[
        "users",
        "presence-rules",
        ALICE,
        "--rule",
        "h allow wv:Harry@Example.com",
        "--rule",
        "d polite-block *@spam.test",
        "--rule",
        "a confirm anyone",
    ]);
    assert_eq!(
        out,
        "RULE  HANDLING      WHO\n\
         h     allow         wv:harry@example.com\n\
         d     polite-block  *@spam.test\n\
         a     confirm       anyone\n\
         WATCHER               DECISION  SINCE\n\
         wv:harry@example.com  allow     7\n"
    );
    let rules = db.store().presence_rules(alice).unwrap();
    assert_eq!(rules[1].watcher, WatcherMatch::Domain("spam.test".into()));
    assert_eq!(rules[1].handling, SubHandling::PoliteBlock);
    // Bad rules are refused and change nothing.
    let (code, err) = failure(&db.run(
        &["users", "presence-rules", ALICE, "--rule", "x maybe anyone"],
        "",
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("\"maybe\": expected allow, block, polite-block or confirm"),
        "{err}"
    );
    let (code, err) = failure(&db.run(
        &[
            "users",
            "presence-rules",
            ALICE,
            "--rule",
            "x allow anyone",
            "--rule",
            "x block anyone",
        ],
        "",
    ));
    assert_ne!(code, 0);
    assert!(
        err.contains("presence rule id \"x\" is used twice"),
        "{err}"
    );
    assert_eq!(db.store().presence_rules(alice).unwrap().len(), 3);
    // Cleared: the default (confirm) decides Harry again.
    db.ok(&["users", "presence-rules", ALICE, "--clear"]);
    assert_eq!(db.store().presence_rules(alice).unwrap(), []);
    assert_eq!(
        db.store().watchers(alice).unwrap()[0].decision,
        WatchDecision::Pending
    );
    let (_, err) = failure(&db.run(&["users", "presence-rules", "sip:nobody@example.com"], ""));
    assert!(err.contains("unknown user sip:nobody@example.com"), "{err}");
}
