//! Users of other domains: foreign contacts in lists (with their blocks), IMs
//! from them kept for users, SMS they send, and the V6 migration.

use super::*;

const JANE: &str = "sip:jane@otherdomain.test";

#[test]
fn foreign_contacts_are_listed_renamed_moved_blocked_and_removed() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    s.put_foreign_contact(alice, JANE, Some("Jane"), "Friends", T0)
        .unwrap();
    assert_eq!(s.contact_lists(alice).unwrap(), ["Friends"]);
    // Moved, and the nickname kept when none is given.
    s.put_foreign_contact(alice, JANE, None, "Work", T0)
        .unwrap();
    assert_eq!(
        s.foreign_contacts(alice).unwrap(),
        [ForeignContact {
            user: alice,
            address: JANE.into(),
            nickname: Some("Jane".into()),
            list_name: "Work".into(),
            blocked: false,
        }]
    );
    assert!(
        s.put_foreign_contact(alice, "wv:jane@otherdomain.test", None, "Work", T0)
            .is_err(),
        "only sip:user@domain addresses"
    );
    assert!(s.remove_entry(alice, ListEntryRef::Foreign(JANE)).unwrap());
    assert!(!s.remove_entry(alice, ListEntryRef::Foreign(JANE)).unwrap());
    assert_eq!(s.foreign_contact(alice, JANE).unwrap(), None);
}

#[test]
fn a_block_of_a_foreign_address_outlives_its_list_and_its_removal() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    // A block needs no contact first.
    s.block_foreign(alice, JANE, true, T0).unwrap();
    assert_eq!(
        s.foreign_contact(alice, JANE).unwrap().map(|c| c.blocked),
        Some(true)
    );
    s.put_foreign_contact(alice, JANE, Some("Jane"), "Friends", T0)
        .unwrap();
    assert!(s.delete_contact_list(alice, "Friends").unwrap());
    let kept = s.foreign_contact(alice, JANE).unwrap().unwrap();
    assert_eq!(
        (kept.blocked, kept.list_name.as_str()),
        (true, DEFAULT_LIST)
    );
    assert!(s.remove_entry(alice, ListEntryRef::Foreign(JANE)).unwrap());
    assert!(s.foreign_contact(alice, JANE).unwrap().unwrap().blocked);
    s.block_foreign(alice, JANE, false, T0).unwrap();
    assert!(s.remove_entry(alice, ListEntryRef::Foreign(JANE)).unwrap());
    assert_eq!(s.foreign_contacts(alice).unwrap(), []);
}

#[test]
fn an_im_from_another_domain_keeps_the_whole_sender_address() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let env = RelayEnvelope {
        message_id: Some("j-1"),
        origin: JANE,
        notify: NotifyFlags::default(),
    };
    let id = s
        .enqueue_foreign_im(alice, JANE, "hello", &env, T0)
        .unwrap();
    let due = s.pending_inbound(T0).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (
            due[0].id,
            due[0].modem_imsi.as_str(),
            due[0].sender.as_str()
        ),
        (id, IM_FOREIGN, JANE)
    );
    assert_eq!(due[0].user, Some(alice));
    let cdr = s.cdr_since(T0).unwrap();
    assert_eq!(cdr.len(), 1);
    assert_eq!(
        (cdr[0].direction, cdr[0].from.as_str(), cdr[0].to.as_deref()),
        (Direction::ImToIm, JANE, Some("sip:alice@example.com"))
    );
}

#[test]
fn an_sms_from_another_domain_has_no_user_and_names_its_sender() {
    let mut s = mem();
    let m = s
        .enqueue_foreign_with(&num("+491701234567"), T0, |reference| {
            Ok(ForeignMessage {
                from: JANE.into(),
                msisdn: num("+491701234567"),
                text: "jane: hi".into(),
                alphabet: pdu::Alphabet::Gsm7,
                parts: submit_parts("+491701234567", "jane: hi", reference),
                front_end: FrontEnd::Sip,
            })
        })
        .unwrap();
    assert_eq!(
        q::<Option<i64>>(
            &s,
            &format!("SELECT user_id FROM messages WHERE id = {}", m.0)
        ),
        None
    );
    assert_eq!(s.foreign_messages_since(JANE, T0).unwrap(), 1);
    assert_eq!(s.foreign_messages_since(JANE, T0.plus(1)).unwrap(), 0);
    let p = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    assert_eq!(p.message, m);
    s.part_sent(p.part, 9, T0.plus(1)).unwrap();
    let cdr = s.cdr_since(T0).unwrap();
    assert_eq!(
        (cdr[0].direction, cdr[0].from.as_str(), cdr[0].to.as_deref()),
        (Direction::ImToSms, JANE, Some("+491701234567"))
    );
    // No conversation: a reply is routed like any SMS from that number.
    assert_eq!(s.last_writer(&num("+491701234567")).unwrap(), None);
}

/// A V5 file as the build before this one left it: opened, it gains the
/// foreign contacts and the foreign sender, every row kept.
#[test]
fn v5_files_gain_foreign_contacts_with_every_row_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db");
    old_file(
        &path,
        5,
        "INSERT INTO messages (id, user_id, subscriber_id, text, alphabet, front_end,
             report_requested, imdn_positive, imdn_negative, part_count, state,
             created_at, updated_at)
         VALUES (7, 1, 1, 'hi', 'gsm7', 'sip', 1, 0, 0, 1, 'delivered', 0, 1);",
    );
    let mut s = Store::open(&path).unwrap();
    assert_eq!(q::<i64>(&s, "PRAGMA user_version"), schema::VERSION);
    assert_eq!(s.integrity_check().unwrap(), "ok");
    assert_eq!(
        q::<String>(
            &s,
            "SELECT text || '|' || user_id || '|' || coalesce(foreign_sender, '-') FROM messages WHERE id = 7"
        ),
        "hi|1|-"
    );
    s.put_foreign_contact(UserId(1), JANE, Some("Jane"), "SMS", T0)
        .unwrap();
    // A user's foreign contacts go with the user.
    s.conn
        .execute("DELETE FROM users WHERE id = 1", [])
        .unwrap();
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM foreign_contacts"), 0);
}
