//! Presence authorisation rows: a presentity's rules (order, normalised
//! addresses, refusals, caps), their watchers (pending ones kept across a
//! restart), and the V6 → V7 migration.

use super::*;
use crate::bridge::api::{PresenceRule, SubHandling, WatchDecision, WatcherInfo, WatcherMatch};

const HARRY: &str = "sip:harry@example.com";

fn rule(id: &str, watcher: WatcherMatch, handling: SubHandling) -> PresenceRule {
    PresenceRule {
        id: id.into(),
        watcher,
        handling,
    }
}

#[test]
fn rules_are_kept_in_order_with_addresses_normalised_and_replaced_whole() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let rules = vec![
        rule(
            "h",
            WatcherMatch::Identity("SIP:harry@Example.COM".into()),
            SubHandling::Allow,
        ),
        rule(
            "d",
            WatcherMatch::Domain("Other.Test".into()),
            SubHandling::PoliteBlock,
        ),
        rule("a", WatcherMatch::Anyone, SubHandling::Block),
    ];
    s.set_presence_rules(alice, &rules).unwrap();
    assert_eq!(
        s.presence_rules(alice).unwrap(),
        [
            rule(
                "h",
                WatcherMatch::Identity(HARRY.into()),
                SubHandling::Allow
            ),
            rule(
                "d",
                WatcherMatch::Domain("other.test".into()),
                SubHandling::PoliteBlock
            ),
            rule("a", WatcherMatch::Anyone, SubHandling::Block),
        ]
    );
    assert_eq!(
        rows(
            &s,
            "SELECT rule_id, match_kind, coalesce(match_value, '-'), handling FROM presence_rules ORDER BY position",
            |r| Ok(format!(
                "{}|{}|{}|{}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?
            ))
        ),
        [
            "h|identity|sip:harry@example.com|allow",
            "d|domain|other.test|polite-block",
            "a|anyone|-|block"
        ]
    );
    // Replaced whole.
    s.set_presence_rules(
        alice,
        &[rule("x", WatcherMatch::Anyone, SubHandling::Confirm)],
    )
    .unwrap();
    assert_eq!(
        s.presence_rules(alice).unwrap(),
        [rule("x", WatcherMatch::Anyone, SubHandling::Confirm)]
    );
    // Another user's rules are theirs.
    let bob = add_sip_user(&mut s, "sip:bob@example.com");
    assert_eq!(s.presence_rules(bob).unwrap(), []);
}

#[test]
fn bad_policies_are_refused_and_the_old_one_stays() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let old = [rule("x", WatcherMatch::Anyone, SubHandling::Allow)];
    s.set_presence_rules(alice, &old).unwrap();
    let refused = |s: &mut Store, rules: &[PresenceRule]| {
        let e = s.set_presence_rules(alice, rules).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        e.to_string()
    };
    let twice = [
        rule("a", WatcherMatch::Anyone, SubHandling::Allow),
        rule("a", WatcherMatch::Anyone, SubHandling::Block),
    ];
    assert_eq!(
        refused(&mut s, &twice),
        "presence rule id \"a\" is used twice"
    );
    let no_address = [rule(
        "a",
        WatcherMatch::Identity("harry".into()),
        SubHandling::Allow,
    )];
    assert_eq!(
        refused(&mut s, &no_address),
        "presence rule \"a\": \"harry\" is not an address"
    );
    let empty_id = [rule("", WatcherMatch::Anyone, SubHandling::Allow)];
    assert!(refused(&mut s, &empty_id).contains("an id is 1 to 64 characters"));
    let bad_domain = [rule(
        "d",
        WatcherMatch::Domain("a@b".into()),
        SubHandling::Allow,
    )];
    assert!(refused(&mut s, &bad_domain).contains("is not a domain"));
    let too_many: Vec<_> = (0..=MAX_PRESENCE_RULES)
        .map(|i| rule(&format!("r{i}"), WatcherMatch::Anyone, SubHandling::Allow))
        .collect();
    assert_eq!(
        refused(&mut s, &too_many),
        format!("101 presence rules: a presentity has at most {MAX_PRESENCE_RULES}")
    );
    assert_eq!(s.presence_rules(alice).unwrap(), old);
    // Exactly the cap is fine.
    s.set_presence_rules(alice, &too_many[..MAX_PRESENCE_RULES])
        .unwrap();
    // And an answer beyond it is refused too.
    let e = s
        .put_identity_rule(alice, HARRY, SubHandling::Allow)
        .unwrap_err();
    assert!(e.to_string().contains("at most 100"), "{e}");
}

#[test]
fn an_answer_replaces_the_rules_about_that_address_in_place() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    s.set_presence_rules(
        alice,
        &[
            rule(
                "h",
                WatcherMatch::Identity(HARRY.into()),
                SubHandling::Confirm,
            ),
            rule("a", WatcherMatch::Anyone, SubHandling::Confirm),
        ],
    )
    .unwrap();
    let id = s
        .put_identity_rule(alice, "sip:harry@EXAMPLE.com", SubHandling::Allow)
        .unwrap();
    assert_eq!(id, "h");
    let jane = s
        .put_identity_rule(alice, "wv:Jane@example.com", SubHandling::Block)
        .unwrap();
    assert_eq!(jane, "wa3");
    assert_eq!(
        s.presence_rules(alice).unwrap(),
        [
            rule(
                "h",
                WatcherMatch::Identity(HARRY.into()),
                SubHandling::Allow
            ),
            rule("a", WatcherMatch::Anyone, SubHandling::Confirm),
            rule(
                "wa3",
                WatcherMatch::Identity("wv:jane@example.com".into()),
                SubHandling::Block
            ),
        ]
    );
    // An unblock drops the block rules of those addresses only.
    let n = s
        .remove_identity_rules(
            alice,
            &["wv:jane@example.com".into(), HARRY.into()],
            SubHandling::Block,
        )
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(s.presence_rules(alice).unwrap().len(), 2);
    assert!(
        s.put_identity_rule(alice, "harry", SubHandling::Allow)
            .is_err()
    );
}

#[test]
fn watchers_are_recorded_with_their_first_sighting_and_capped() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let before = s
        .record_watcher(alice, "SIP:harry@Example.com", WatchDecision::Pending, T0)
        .unwrap();
    assert_eq!(before, None);
    let before = s
        .record_watcher(alice, HARRY, WatchDecision::Allow, T0.plus(5))
        .unwrap();
    assert_eq!(before, Some(WatchDecision::Pending));
    assert_eq!(
        s.watchers(alice).unwrap(),
        [WatcherInfo {
            watcher: HARRY.into(),
            decision: WatchDecision::Allow,
            since: T0,
        }]
    );
    assert_eq!(
        s.watcher(alice, "sip:harry@EXAMPLE.com")
            .unwrap()
            .map(|w| w.decision),
        Some(WatchDecision::Allow)
    );
    assert_eq!(s.watcher(alice, "sip:nobody@example.com").unwrap(), None);
    for i in 1..MAX_WATCHERS {
        s.record_watcher(
            alice,
            &format!("sip:w{i}@example.com"),
            WatchDecision::Pending,
            T0,
        )
        .unwrap();
    }
    let e = s
        .record_watcher(
            alice,
            "sip:one-more@example.com",
            WatchDecision::Pending,
            T0,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("too many watchers: a presentity keeps at most {MAX_WATCHERS}")
    );
    // One already known still moves.
    s.record_watcher(alice, HARRY, WatchDecision::Block, T0)
        .unwrap();
}

#[test]
fn pending_watchers_and_rules_survive_a_restart_and_go_with_their_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    {
        let mut s = Store::open(&path).unwrap();
        let alice = add_alice(&mut s);
        s.record_watcher(alice, HARRY, WatchDecision::Pending, T0)
            .unwrap();
        s.put_identity_rule(alice, "sip:jane@example.com", SubHandling::Allow)
            .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let alice = s
        .user_by_address("sip:alice@example.com")
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        s.watchers(alice).unwrap(),
        [WatcherInfo {
            watcher: HARRY.into(),
            decision: WatchDecision::Pending,
            since: T0,
        }]
    );
    assert_eq!(s.presence_rules(alice).unwrap().len(), 1);
    s.conn
        .execute("DELETE FROM users WHERE id = ?1", [alice.0])
        .unwrap();
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM watchers"), 0);
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM presence_rules"), 0);
}

/// A V6 file as the build before this one left it: opened, it gains the
/// presence rules and watchers, every row kept.
#[test]
fn v6_files_gain_presence_rules_and_watchers_with_every_row_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in &schema::MIGRATIONS[..6] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 6).unwrap();
        c.execute_batch(
            "INSERT INTO users (id, sip_aor, imps_id, created_at)
                 VALUES (1, 'sip:alice@example.com', 'wv:alice@example.com', 0);
             INSERT INTO foreign_contacts (user_id, address, blocked, created_at)
                 VALUES (1, 'sip:jane@otherdomain.test', 1, 0);",
        )
        .unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    assert_eq!(q::<i64>(&s, "PRAGMA user_version"), schema::VERSION);
    assert_eq!(s.integrity_check().unwrap(), "ok");
    assert_eq!(
        q::<String>(
            &s,
            "SELECT address || '|' || blocked FROM foreign_contacts WHERE user_id = 1"
        ),
        "sip:jane@otherdomain.test|1"
    );
    // One presentity by either address.
    let by_sip = s.user_by_address("sip:alice@example.com").unwrap().unwrap();
    let by_imps = s.user_by_address("wv:alice@example.com").unwrap().unwrap();
    assert_eq!(by_sip.id, by_imps.id);
    s.record_watcher(by_imps.id, HARRY, WatchDecision::Pending, T0)
        .unwrap();
    assert_eq!(s.watchers(by_sip.id).unwrap().len(), 1);
    // The CHECKs hold.
    assert!(s
        .conn
        .execute(
            "INSERT INTO watchers (user_id, watcher, decision, since) VALUES (1, 'x', 'maybe', 0)",
            []
        )
        .is_err());
    assert!(
        s.conn
            .execute(
                "INSERT INTO presence_rules (user_id, rule_id, position, match_kind, handling) \
             VALUES (1, 'r', 0, 'identity', 'allow')",
                []
            )
            .is_err()
    );
}
