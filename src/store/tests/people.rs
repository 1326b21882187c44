//! Users, contacts, subscribers and conversations.

use super::*;

#[test]
fn sip_ha1_matches_rfc_2617() {
    // RFC 2617 §3.5: HA1 of Mufasa:testrealm@host.com:Circle Of Life.
    assert_eq!(
        sip_ha1("Mufasa", "testrealm@host.com", "Circle Of Life"),
        "939e7578ed9e3c518a452acee763bce9"
    );
}

#[test]
fn users_are_added_with_credentials_and_found_by_either_address() {
    let mut s = mem();
    let id = s
        .add_user(
            Some("sip:alice@Example.COM"),
            Some("wv:Alice@example.com"),
            &UserSettings {
                display_name: Some("Alice".into()),
                ..UserSettings::default()
            },
            Some("s3cret"),
            "smsbridge",
            T0,
        )
        .unwrap();
    let u = s.user_by_address("sip:alice@example.com").unwrap().unwrap();
    assert_eq!(u.id, id);
    assert_eq!(
        s.user_by_address("WV:alice@EXAMPLE.com")
            .unwrap()
            .unwrap()
            .id,
        id
    );
    assert_eq!(u.sip_aor.as_deref(), Some("sip:alice@example.com"));
    assert_eq!(u.imps_id.as_deref(), Some("wv:alice@example.com"));
    assert_eq!(
        u.sip_digest,
        Some(("smsbridge".into(), sip_ha1("alice", "smsbridge", "s3cret")))
    );
    assert!(s.verify_password(&u, "s3cret"));
    assert!(!s.verify_password(&u, "s3cret "));
    let phc: String = q(&s, "SELECT password_hash FROM users");
    assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
    assert!(!phc.contains("s3cret"));
    assert_eq!(u.settings.rate_per_minute, 10);
    assert_eq!(u.settings.daily_cap, 200);
    assert!(u.settings.may_send_sms);
    assert_eq!(u.settings.body_format, BodyFormat::Plain);

    // IMPS-only users have no HA1.
    s.add_user(
        None,
        Some("wv:bob"),
        &UserSettings::default(),
        Some("pw"),
        "r",
        T0,
    )
    .unwrap();
    let bob = s.user_by_address("wv:bob").unwrap().unwrap();
    assert!(bob.sip_digest.is_none() && bob.has_password());

    s.set_password("sip:alice@example.com", "new", "other")
        .unwrap();
    let u = s.user(id).unwrap().unwrap();
    assert!(s.verify_password(&u, "new") && !s.verify_password(&u, "s3cret"));
    assert_eq!(
        u.sip_digest,
        Some(("other".into(), sip_ha1("alice", "other", "new")))
    );
}

#[test]
fn bad_user_input_is_refused_with_reasons() {
    let mut s = mem();
    add_alice(&mut s);
    let dup = s
        .add_user(
            Some("sip:alice@EXAMPLE.com"),
            None,
            &UserSettings::default(),
            None,
            "r",
            T0,
        )
        .unwrap_err();
    assert!(
        matches!(dup, StoreError::Duplicate(_)) && dup.is_bad_input(),
        "{dup}"
    );
    assert_eq!(dup.to_string(), "user sip:alice@example.com already exists");
    for bad in ["alice", "sip:alice", "mailto:a@b", "sip:a b@c", "wv:"] {
        let e = s
            .add_user(Some(bad), None, &UserSettings::default(), None, "r", T0)
            .unwrap_err();
        assert!(matches!(e, StoreError::InvalidInput(_)), "{bad}: {e}");
    }
    let e = s
        .add_user(
            Some("wv:x@y"),
            None,
            &UserSettings::default(),
            None,
            "r",
            T0,
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "wv:x@y is in the wrong field");
    let e = s
        .set_password("sip:nobody@example.com", "x", "r")
        .unwrap_err();
    assert!(matches!(e, StoreError::UnknownUser(_)));
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM users"), 1);
}

fn contact(user: &str, msisdn: &str, alias: Option<&str>) -> NewContact {
    NewContact {
        user: user.into(),
        msisdn: num(msisdn),
        nickname: Some("Mum".into()),
        alias: alias.map(Into::into),
        list_name: None,
    }
}

#[test]
fn contacts_link_users_and_subscribers() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let bob = add_sip_user(&mut s, "sip:bob@example.com");
    s.add_contact(
        &contact("sip:alice@example.com", "0170 1234567", Some("Mum")),
        T0,
    )
    .unwrap();
    // The alias is unique per user, in any case; another user may use it.
    let e = s
        .add_contact(
            &contact("sip:alice@example.com", "+491709999999", Some("MUM")),
            T0,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "alias mum of sip:alice@example.com already exists"
    );
    let e = s
        .add_contact(&contact("sip:alice@example.com", "+491701234567", None), T0)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "contact +491701234567 of sip:alice@example.com already exists"
    );
    s.add_contact(
        &contact("sip:bob@example.com", "+491701234567", Some("mum")),
        T0.plus(1),
    )
    .unwrap();
    let e = s
        .add_contact(
            &contact("sip:alice@example.com", "+491705555555", Some("12345")),
            T0,
        )
        .unwrap_err();
    assert!(e.to_string().contains("it needs a letter"), "{e}");

    let mum = s.contact_by_alias(alice, "MuM").unwrap().unwrap();
    assert_eq!(mum.msisdn.as_str(), "+491701234567");
    assert_eq!(mum.list_name, "SMS");
    assert_eq!(mum.nickname.as_deref(), Some("Mum"));
    assert_eq!(s.contacts(None).unwrap().len(), 2);
    assert_eq!(s.contacts(Some("sip:bob@example.com")).unwrap().len(), 1);
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM subscribers"), 1);

    let m = num("+491701234567");
    assert_eq!(s.contact_owners(&m).unwrap(), vec![alice, bob]);
    s.set_blocked("sip:alice@example.com", &m, true).unwrap();
    assert!(s.is_blocked(alice, &m).unwrap());
    assert_eq!(s.contact_owners(&m).unwrap(), vec![bob]);
    s.set_blocked("sip:alice@example.com", &m, false).unwrap();
    assert_eq!(s.contact_owners(&m).unwrap(), vec![alice, bob]);

    s.remove_contact("sip:bob@example.com", &m).unwrap();
    assert_eq!(s.contact_owners(&m).unwrap(), vec![alice]);
    let e = s.remove_contact("sip:bob@example.com", &m).unwrap_err();
    assert!(matches!(e, StoreError::UnknownContact { .. }) && e.is_bad_input());
}

#[test]
fn import_is_all_or_nothing_and_names_every_bad_row() {
    let mut s = mem();
    add_alice(&mut s);
    let good = contact("sip:alice@example.com", "+491701111111", Some("a"));
    let rows = vec![
        good.clone(),
        contact("sip:nobody@example.com", "+491702222222", None),
        contact("sip:alice@example.com", "+491703333333", Some("a")),
        contact("sip:alice@example.com", "+491704444444", Some("d")),
    ];
    match s.import_contacts(&rows, T0) {
        Err(ImportError::Rows(bad)) => {
            let got: Vec<(usize, String)> = bad.iter().map(|(i, e)| (*i, e.to_string())).collect();
            assert_eq!(
                got,
                vec![
                    (1, "unknown user sip:nobody@example.com".to_owned()),
                    (
                        2,
                        "alias a of sip:alice@example.com already exists".to_owned()
                    ),
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM contacts"), 0);
    assert_eq!(s.import_contacts(&[good, rows[3].clone()], T0).unwrap(), 2);
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM contacts"), 2);
}

#[test]
fn last_writer_and_opt_out() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let bob = add_sip_user(&mut s, "sip:bob@example.com");
    let m = num("+491701234567");
    assert_eq!(s.last_writer(&m).unwrap(), None);
    s.enqueue(&new_message(alice, "+491701234567", "hi"), T0)
        .unwrap();
    s.record_conversation(bob, &m, Some(MODEM_B), T0.plus(5))
        .unwrap();
    let w = s.last_writer(&m).unwrap().unwrap();
    assert_eq!(
        (w.user, w.modem_imsi.as_deref(), w.at),
        (bob, Some(MODEM_B), T0.plus(5))
    );
    // Alice's part goes out later through modem A: she is the last writer now.
    let c = s.claim_next_part(MODEM_A, T0.plus(9)).unwrap().unwrap();
    s.part_sent(c.part, 1, T0.plus(10)).unwrap();
    let w = s.last_writer(&m).unwrap().unwrap();
    assert_eq!((w.user, w.modem_imsi.as_deref()), (alice, Some(MODEM_A)));
    // A user who blocked the subscriber is not routed their replies.
    s.add_contact(&contact("sip:alice@example.com", "+491701234567", None), T0)
        .unwrap();
    s.set_blocked("sip:alice@example.com", &m, true).unwrap();
    assert_eq!(s.last_writer(&m).unwrap().unwrap().user, bob);

    assert_eq!(s.subscriber(&m).unwrap().unwrap().opted_out_at, None);
    s.set_opted_out(&m, true, T0.plus(20)).unwrap();
    assert_eq!(
        s.subscriber(&m).unwrap().unwrap().opted_out_at,
        Some(T0.plus(20))
    );
    s.set_opted_out(&m, false, T0.plus(30)).unwrap();
    assert_eq!(s.subscriber(&m).unwrap().unwrap().opted_out_at, None);
}

#[test]
fn removing_a_user_fails_their_unsent_parts_and_keeps_records() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    s.add_contact(&contact("sip:alice@example.com", "+491701234567", None), T0)
        .unwrap();
    let sent = s
        .enqueue(&new_message(alice, "+491701234567", "one"), T0)
        .unwrap();
    let c = s.claim_next_part(MODEM_A, T0).unwrap().unwrap();
    s.part_sent(c.part, 9, T0).unwrap();
    let queued = s
        .enqueue(&new_message(alice, "+491701234567", "two"), T0)
        .unwrap();
    s.remove_user("sip:alice@example.com", T0.plus(1)).unwrap();
    assert_eq!(
        s.message(queued).unwrap().unwrap().state,
        MessageState::Failed
    );
    assert_eq!(s.message(queued).unwrap().unwrap().user, None);
    assert_eq!(s.message(sent).unwrap().unwrap().state, MessageState::Sent);
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM contacts"), 0);
    assert_eq!(q::<i64>(&s, "SELECT count(*) FROM conversations"), 0);
    let cdr = s.cdr_since(UnixTime(0)).unwrap();
    assert_eq!(cdr.len(), 1);
    assert_eq!(cdr[0].from, "sip:alice@example.com");
    assert!(s.claim_next_part(MODEM_A, T0.plus(2)).unwrap().is_none());
}

#[test]
fn the_imps_digest_secret_is_kept_only_for_users_who_opted_in() {
    let mut s = mem();
    let st = UserSettings::default();
    let id = s
        .add_user(None, Some("wv:alice@x.test"), &st, Some("secret"), "r", T0)
        .unwrap();
    assert_eq!(s.imps_secret(id).unwrap(), None, "not kept by default");
    let stored: Option<String> = q(&s, "SELECT imps_secret FROM users");
    assert_eq!(stored, None);
    // Turning it on needs the current password.
    assert!(s.set_imps_digest("wv:alice@x.test", Some("guess")).is_err());
    s.set_imps_digest("wv:alice@x.test", Some("secret"))
        .unwrap();
    assert!(s.has_imps_digest(id).unwrap());
    // A new password replaces the kept copy for a user who opted in...
    s.set_password("wv:alice@x.test", "n3w", "r").unwrap();
    assert_eq!(s.imps_secret(id).unwrap().as_deref(), Some("n3w"));
    // ...and off forgets it.
    s.set_imps_digest("wv:alice@x.test", None).unwrap();
    assert_eq!(s.imps_secret(id).unwrap(), None);
    s.set_password("wv:alice@x.test", "n3w2", "r").unwrap();
    assert_eq!(
        s.imps_secret(id).unwrap(),
        None,
        "a new password does not opt in"
    );
    // Only IMPS users have it.
    s.add_user(Some("sip:bob@x.test"), None, &st, Some("pw"), "r", T0)
        .unwrap();
    assert!(s.set_imps_digest("sip:bob@x.test", Some("pw")).is_err());
}
