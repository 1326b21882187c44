//! A user's own phone and what happens to their IMs while offline (TS 23.204
//! interworking preference), and the outbox rows that remember an SMS was an
//! IM for a user.

use super::*;

fn with_phone(phone: &str, offline: OfflineDelivery) -> UserSettings {
    UserSettings {
        phone: Some(num(phone)),
        offline_delivery: offline,
        ..UserSettings::default()
    }
}

#[test]
fn phone_and_preference_are_stored_and_read_back() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let u = s.user(alice).unwrap().unwrap();
    assert_eq!(u.settings.phone, None);
    assert_eq!(u.settings.offline_delivery, OfflineDelivery::Store);
    s.update_user_settings(
        "sip:alice@example.com",
        &with_phone("0170 1234567", OfflineDelivery::Sms),
    )
    .unwrap();
    let got = rows(&s, "SELECT phone, offline_delivery FROM users", |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    });
    assert_eq!(got, [("+491701234567".to_owned(), "sms".to_owned())]);
    let u = s.user(alice).unwrap().unwrap();
    assert_eq!(
        u.settings.phone.as_ref().map(Msisdn::as_str),
        Some("+491701234567")
    );
    assert_eq!(u.settings.offline_delivery, OfflineDelivery::Sms);
    assert_eq!(
        s.user_by_phone(&num("+491701234567"))
            .unwrap()
            .map(|u| u.id),
        Some(alice)
    );
    assert_eq!(s.user_by_phone(&num("+491709999999")).unwrap(), None);
    // JSON shows both.
    let json = serde_json::to_value(&u).unwrap();
    assert_eq!(json["phone"], "+491701234567");
    assert_eq!(json["offline_delivery"], "sms");
}

#[test]
fn sms_without_a_phone_and_a_phone_of_another_user_are_refused() {
    let mut s = mem();
    add_alice(&mut s);
    let err = s
        .update_user_settings(
            "sip:alice@example.com",
            &UserSettings {
                offline_delivery: OfflineDelivery::Sms,
                ..UserSettings::default()
            },
        )
        .unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    assert!(err.to_string().contains("phone number"), "{err}");
    s.update_user_settings(
        "sip:alice@example.com",
        &with_phone("+491701234567", OfflineDelivery::Store),
    )
    .unwrap();
    // Setting it again on the same user is no conflict.
    s.update_user_settings(
        "sip:alice@example.com",
        &with_phone("+491701234567", OfflineDelivery::Sms),
    )
    .unwrap();
    let err = s
        .add_user(
            Some("sip:bob@example.com"),
            None,
            &with_phone("+491701234567", OfflineDelivery::Store),
            None,
            "smsbridge",
            T0,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err}");
    add_sip_user(&mut s, "sip:bob@example.com");
    let err = s
        .update_user_settings(
            "sip:bob@example.com",
            &with_phone("+491701234567", OfflineDelivery::Store),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err}");
    let phones = rows(
        &s,
        "SELECT count(*) FROM users WHERE phone IS NOT NULL",
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(phones, [1]);
}

#[test]
fn the_latest_im_sent_to_a_users_phone_names_its_sender() {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let bob = add_sip_user(&mut s, "sip:bob@example.com");
    let carol = add_sip_user(&mut s, "sip:carol@example.com");
    let phone = "+491701234567";
    // An ordinary SMS to that number is no IM for bob.
    let plain = s.enqueue(&new_message(carol, phone, "plain"), T0).unwrap();
    assert_eq!(s.message_for_user(plain).unwrap(), None);
    assert_eq!(s.latest_sender_via_phone(bob, &num(phone)).unwrap(), None);
    let first = s.enqueue(&new_message(alice, phone, "one"), T0).unwrap();
    s.set_message_for_user(first, bob).unwrap();
    assert_eq!(s.message_for_user(first).unwrap(), Some(bob));
    assert_eq!(
        s.latest_sender_via_phone(bob, &num(phone)).unwrap(),
        Some(alice)
    );
    let second = s
        .enqueue(&new_message(carol, phone, "two"), T0.plus(1))
        .unwrap();
    s.set_message_for_user(second, bob).unwrap();
    assert_eq!(
        s.latest_sender_via_phone(bob, &num(phone)).unwrap(),
        Some(carol)
    );
    // For another owner, or another number: nobody.
    assert_eq!(s.latest_sender_via_phone(alice, &num(phone)).unwrap(), None);
    assert_eq!(
        s.latest_sender_via_phone(bob, &num("+491709999999"))
            .unwrap(),
        None
    );
    let got = rows(
        &s,
        "SELECT id, for_user_id FROM messages ORDER BY id",
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)),
    );
    assert_eq!(
        got,
        [
            (plain.0, None),
            (first.0, Some(bob.0)),
            (second.0, Some(bob.0))
        ]
    );
    assert!(s.set_message_for_user(MessageId(999), bob).is_err());
    // The owner removed: the rows forget them.
    s.remove_user("sip:bob@example.com", T0.plus(2)).unwrap();
    assert_eq!(s.message_for_user(first).unwrap(), None);
}
