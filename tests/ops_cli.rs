//! The operator's commands beyond adding people: `users limits`, `inbox list`,
//! `queue fail|requeue` and `purge`, run as a process on a temporary database
//! and checked by exact output, exit status and the rows left behind.

mod cli_support;

use cli_support::{Db, failure, stdout};
use serde_json::{Value, json};
use smsbridge::pdu;
use smsbridge::store::{
    FrontEnd, MessageId, MessageState, NewMessage, Received, Store, UnixTime, UserId,
    normalise_msisdn,
};

/// "How are you?" from +31641600986 (the SMS-DELIVER vector every PDU guide uses).
const HOW_ARE_YOU: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
const MODEM: &str = "262011234567890";

fn t0() -> UnixTime {
    UnixTime::parse("2026-05-01T12:00:00Z").unwrap()
}

fn alice(db: &Db) -> UserId {
    db.ok(&["users", "add", "sip:alice@example.com"]);
    db.store()
        .user_by_address("sip:alice@example.com")
        .unwrap()
        .unwrap()
        .id
}

fn message(user: UserId, parts: usize, report: bool) -> NewMessage {
    NewMessage {
        user,
        msisdn: normalise_msisdn("+491701234567", None).unwrap(),
        text: "hello".into(),
        alphabet: pdu::Alphabet::Gsm7,
        parts: (0..parts).map(|i| vec![0x00, 0x01, i as u8]).collect(),
        im_message_id: None,
        report_requested: report,
        imdn_positive: false,
        imdn_negative: true,
        front_end: FrontEnd::Sip,
    }
}

#[test]
fn users_limits_are_shown_and_set() {
    let db = Db::new();
    alice(&db);
    let shown = "user:        sip:alice@example.com\n\
                 per minute:  10\n\
                 per day:     200\n\
                 body format: plain\n\
                 phone:       -\n\
                 offline IMs: store\n";
    assert_eq!(db.ok(&["users", "limits", "sip:alice@example.com"]), shown);
    assert_eq!(
        db.ok(&[
            "users",
            "limits",
            "sip:alice@Example.COM",
            "--rate",
            "0",
            "--format",
            "cpim"
        ]),
        "user:        sip:alice@example.com\n\
         per minute:  no limit\n\
         per day:     200\n\
         body format: cpim\n\
         phone:       -\n\
         offline IMs: store\n"
    );
    db.ok(&["users", "limits", "sip:alice@example.com", "--daily", "5"]);
    let u = db
        .store()
        .user_by_address("sip:alice@example.com")
        .unwrap()
        .unwrap();
    assert_eq!((u.settings.rate_per_minute, u.settings.daily_cap), (0, 5));
    assert_eq!(
        failure(&db.run(&["users", "limits", "sip:bob@example.com"], "")),
        (
            2,
            "smsbridge: unknown user sip:bob@example.com\n".to_owned()
        )
    );
    assert_eq!(
        failure(&db.run(
            &["users", "limits", "sip:bob@example.com", "--daily", "1"],
            ""
        )),
        (
            2,
            "smsbridge: unknown user sip:bob@example.com\n".to_owned()
        )
    );
    let (code, err) = failure(&db.run(
        &[
            "users",
            "limits",
            "sip:alice@example.com",
            "--format",
            "html",
        ],
        "",
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown format \"html\"; the formats are plain, cpim"),
        "{err}"
    );
    let (code, err) = failure(&db.run(
        &["users", "limits", "sip:alice@example.com", "--rate", "-1"],
        "",
    ));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn users_phone_and_offline_preference_are_set_and_refused_with_reasons() {
    let db = Db::new();
    alice(&db);
    db.ok(&["users", "add", "wv:bob@example.com"]);
    let config = db.dir().join("smsbridge.toml");
    std::fs::write(&config, "[numbers]\ndefault_country_code = \"49\"\n").unwrap();
    let config = config.to_str().unwrap();
    let limits = |args: &[&str]| {
        let mut all = vec!["--config", config, "users", "limits"];
        all.extend_from_slice(args);
        db.run(&all, "")
    };
    // SMS while offline needs a phone first.
    let (code, err) = failure(&limits(&["sip:alice@example.com", "--offline", "sms"]));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "smsbridge: sip:alice@example.com has no phone number: give one with --phone for --offline sms\n"
    );
    // A national number takes the configured country code.
    let out = stdout(&limits(&[
        "sip:alice@example.com",
        "--phone",
        "0170 1234567",
        "--offline",
        "sms",
    ]));
    assert!(
        out.ends_with("phone:       +491701234567\noffline IMs: sms\n"),
        "{out}"
    );
    // Nobody else may have it.
    let (code, err) = failure(&limits(&["wv:bob@example.com", "--phone", "+491701234567"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("phone +491701234567 (another user has it)"),
        "{err}"
    );
    let (code, err) = failure(&limits(&["sip:alice@example.com", "--offline", "email"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown choice \"email\"; the choices are store, sms"),
        "{err}"
    );
    let (code, _) = failure(&limits(&["sip:alice@example.com", "--phone", "12ab"]));
    assert_eq!(code, 2);
    let list: Value = serde_json::from_str(&db.ok(&["users", "list", "--json"])).unwrap();
    assert_eq!(list[0]["sip"], "sip:alice@example.com");
    assert_eq!(list[0]["phone"], "+491701234567");
    assert_eq!(list[0]["offline_delivery"], "sms");
    assert_eq!(list[1]["phone"], Value::Null);
    assert_eq!(list[1]["offline_delivery"], "store");
    // Forgetting the phone also stops IMs going there.
    let out = stdout(&limits(&["sip:alice@example.com", "--no-phone"]));
    assert!(
        out.ends_with("phone:       -\noffline IMs: store\n"),
        "{out}"
    );
    let u = db
        .store()
        .user_by_address("sip:alice@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(u.settings.phone, None);
}

/// Three SMS received: one delivered to alice, one failed, one pending.
fn fill_inbox(db: &Db, alice: UserId) {
    let mut s = db.store();
    let raw = pdu::from_hex(HOW_ARE_YOU).unwrap();
    let mut ids = Vec::new();
    for (i, modem) in ["modem-a", "modem-b", "modem-c"].iter().enumerate() {
        let Received::Message(id) = s.receive_pdu(modem, &raw, t0().plus(i as i64)).unwrap() else {
            panic!("not a message")
        };
        ids.push(id);
    }
    s.mark_inbound_delivered(ids[0], alice, t0().plus(5))
        .unwrap();
    s.mark_inbound_failed(ids[1], "no user to deliver to", t0().plus(6))
        .unwrap();
}

#[test]
fn inbox_list_shows_received_messages_by_state() {
    let db = Db::new();
    fill_inbox(&db, alice(&db));
    assert_eq!(
        db.ok(&["inbox", "list"]),
        "ID  RECEIVED              FROM          USER                   STATE      TEXT\n\
         1   2026-05-01T12:00:00Z  +31641600986  sip:alice@example.com  delivered  How are you?\n\
         2   2026-05-01T12:00:01Z  +31641600986  -                      failed     How are you?\n\
         3   2026-05-01T12:00:02Z  +31641600986  -                      pending    How are you?\n"
    );
    let v: Value =
        serde_json::from_str(&db.ok(&["inbox", "list", "--state", "failed", "--json"])).unwrap();
    assert_eq!(
        v,
        json!([{"id": 2, "received_at": "2026-05-01T12:00:01Z", "sender": "+31641600986",
                "user": null, "state": "failed", "modem_imsi": "modem-b", "incomplete": false,
                "attempts": 0, "last_error": "no user to deliver to", "text": "How are you?"}])
    );
    assert_eq!(
        db.ok(&["inbox", "list", "--state", "delivered", "--csv"]),
        "id,received_at,sender,user,state,modem_imsi,incomplete,attempts,last_error,text\n\
         1,2026-05-01T12:00:00Z,+31641600986,sip:alice@example.com,delivered,modem-a,false,1,,How are you?\n"
    );
    assert_eq!(
        db.ok(&["inbox", "list", "--state", "expired", "--json"]),
        "[]\n"
    );
    let (code, err) = failure(&db.run(&["inbox", "list", "--state", "lost"], ""));
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown state \"lost\"; the states are pending, delivered, failed, expired"),
        "{err}"
    );
}

fn state(s: &Store, id: i64) -> MessageState {
    s.message(MessageId(id)).unwrap().unwrap().state
}

#[test]
fn queue_fail_and_requeue_keep_rule_4() {
    let db = Db::new();
    let alice = alice(&db);
    let mut s = db.store();
    // 1: queued. 2: outcome unknown on MODEM. 3: submitted, no report asked
    // (delivery unknown). 4: two parts, the first out through MODEM.
    for (parts, report) in [(1, true), (1, true), (1, false), (2, true)] {
        s.enqueue(&message(alice, parts, report), t0()).unwrap();
    }
    let claim = |s: &mut Store| s.claim_next_part(MODEM, t0()).unwrap().unwrap();
    let p = claim(&mut s);
    assert_eq!(p.message, MessageId(1));
    s.part_failed(
        p.part,
        "+CMS ERROR: 331",
        smsbridge::store::Retry::At(t0()),
        t0(),
    )
    .unwrap();
    // Message 1 went back to the queue unpinned; take 2, 3 and 4 in turn.
    let p = s.claim_next_part(MODEM, t0()).unwrap().unwrap();
    let p = if p.message == MessageId(1) {
        s.part_failed(
            p.part,
            "busy",
            smsbridge::store::Retry::At(t0().plus(3600)),
            t0(),
        )
        .unwrap();
        claim(&mut s)
    } else {
        p
    };
    assert_eq!(p.message, MessageId(2));
    s.part_outcome_unknown(p.part, t0()).unwrap();
    let p = claim(&mut s);
    s.part_sent(p.part, 3, t0()).unwrap();
    let p = claim(&mut s);
    assert_eq!(p.message, MessageId(4));
    s.part_sent(p.part, 4, t0()).unwrap();
    drop(s);

    assert_eq!(
        db.ok(&[
            "queue",
            "fail",
            "1",
            "--reason",
            "recipient asked us not to"
        ]),
        "message 1: failed\n"
    );
    let s = db.store();
    assert_eq!(state(&s, 1), MessageState::Failed);
    let due = s.due_notices(UnixTime::now(), 10).unwrap();
    let due: Vec<_> = due.iter().filter(|n| n.message == MessageId(1)).collect();
    assert_eq!(
        due[0].last_error.as_deref(),
        Some("recipient asked us not to")
    );
    drop(s);

    assert_eq!(
        failure(&db.run(&["queue", "requeue", "2", "3"], "")),
        (
            2,
            "smsbridge: message 2: part 1 may have been sent already; requeue with \
             --even-if-sent to send it again anyway (the phone may get it twice)\n\
             smsbridge: cannot requeue message 3: it is delivery_unknown already\n"
                .to_owned()
        )
    );
    assert_eq!(state(&db.store(), 2), MessageState::OutcomeUnknown);
    assert_eq!(
        db.ok(&["queue", "requeue", "2", "1", "--even-if-sent"]),
        "message 2: 1 part queued again\nmessage 1: 1 part queued again\n"
    );
    let s = db.store();
    assert_eq!(
        (state(&s, 1), state(&s, 2)),
        (MessageState::Queued, MessageState::Queued)
    );
    let due = s.due_notices(UnixTime::now(), 10).unwrap();
    assert!(due.iter().all(|n| n.message == MessageId(3)), "{due:?}");
    drop(s);

    // The modem is gone for good: message 4 is pinned to it.
    let (code, err) = failure(&db.run(&["queue", "requeue", "--modem", MODEM], ""));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "smsbridge: message 4: part 1 may have been sent already; requeue with \
             --even-if-sent to send it again anyway (the phone may get it twice)\n"
        )
    );
    assert_eq!(
        db.ok(&["queue", "requeue", "--modem", MODEM, "--even-if-sent"]),
        "message 4: 2 parts queued again\n"
    );
    let m = db.store().message(MessageId(4)).unwrap().unwrap();
    assert_eq!(
        (m.state, m.modem_imsi, m.parts_sent),
        (MessageState::Queued, None, 0)
    );
    assert_eq!(
        db.ok(&["queue", "fail", "--modem", MODEM]),
        format!("no message is pinned to modem {MODEM}\n")
    );
    assert_eq!(
        failure(&db.run(&["queue", "fail", "99"], "")),
        (2, "smsbridge: no message with id 99\n".to_owned())
    );
    let (code, err) = failure(&db.run(&["queue", "fail", "1", "--modem", MODEM], ""));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn purge_prints_counts_and_a_dry_run_deletes_nothing() {
    let db = Db::new();
    let alice = alice(&db);
    let mut s = db.store();
    let told = s.enqueue(&message(alice, 2, false), t0()).unwrap();
    for mr in [1, 2] {
        let p = s.claim_next_part(MODEM, t0()).unwrap().unwrap();
        s.part_sent(p.part, mr, t0()).unwrap();
    }
    s.mark_notified(told, t0()).unwrap();
    // Final but its sender not told yet: kept (its charging record goes; the
    // records of the delivered and the failed SMS go too, the pending one's stays).
    s.enqueue(&message(alice, 1, false), t0()).unwrap();
    let p = s.claim_next_part(MODEM, t0()).unwrap().unwrap();
    s.part_sent(p.part, 3, t0()).unwrap();
    drop(s);
    fill_inbox(&db, alice);
    let counts = "TABLE             WOULD DELETE\n\
                  messages          1\n\
                  parts             2\n\
                  inbound           1\n\
                  inbox_pdus        1\n\
                  charging_records  5\n";
    let o = db.run(&["purge", "--older-than", "30d", "--dry-run"], "");
    assert_eq!(stdout(&o), counts);
    assert_eq!(
        String::from_utf8(o.stderr).unwrap(),
        "smsbridge: dry run, nothing was deleted\n"
    );
    assert_eq!(
        db.ok(&["purge", "--older-than", "30d", "--dry-run"]),
        counts
    );
    assert_eq!(
        db.ok(&["purge", "--older-than", "30d"]),
        counts.replace("WOULD DELETE", "DELETED")
    );
    assert_eq!(
        db.ok(&["purge", "--older-than", "30d"]),
        "TABLE             DELETED\n\
         messages          0\n\
         parts             0\n\
         inbound           0\n\
         inbox_pdus        0\n\
         charging_records  0\n"
    );
    let s = db.store();
    assert_eq!(s.messages(None).unwrap().len(), 1);
    assert_eq!(s.inbound_messages().unwrap().len(), 2);
    drop(s);
    // Nothing ended 100 years ago.
    let zero = db.ok(&["purge", "--older-than", "36500d", "--dry-run"]);
    assert!(zero.lines().skip(1).all(|l| l.ends_with(" 0")), "{zero}");
    let (code, err) = failure(&db.run(&["purge", "--older-than", "soon"], ""));
    assert_eq!(code, 2, "{err}");
    let (code, err) = failure(&db.run(&["purge"], ""));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn charging_records_cover_every_direction_with_the_outcome() {
    let db = Db::new();
    let alice = alice(&db);
    db.ok(&["users", "add", "wv:bob@example.com"]);
    let mut s = db.store();
    let bob = s.user_by_address("wv:bob@example.com").unwrap().unwrap().id;
    // IM → SMS, reported delivered.
    s.enqueue(&message(alice, 1, true), t0()).unwrap();
    let p = s.claim_next_part(MODEM, t0()).unwrap().unwrap();
    s.part_sent(p.part, 9, t0().plus(1)).unwrap();
    let to = normalise_msisdn("+491701234567", None).unwrap();
    s.apply_status_report(MODEM, &to, 9, None, pdu::Status::RECEIVED, t0().plus(20))
        .unwrap();
    // SMS → IM: one delivered to alice, one expired, one still pending.
    let raw = pdu::from_hex(HOW_ARE_YOU).unwrap();
    let mut received = Vec::new();
    for (i, modem) in ["modem-a", "modem-b", "modem-c"].iter().enumerate() {
        let at = t0().plus(2 + i as i64);
        let Received::Message(id) = s.receive_pdu(modem, &raw, at).unwrap() else {
            panic!("not a message")
        };
        received.push(id);
    }
    s.mark_inbound_delivered(received[0], alice, t0().plus(30))
        .unwrap();
    s.mark_inbound_expired(received[1], "not delivered in time", t0().plus(40))
        .unwrap();
    // IM → IM across front ends (SIP alice to IMPS bob), and back, refused.
    let env = |origin| smsbridge::store::RelayEnvelope {
        message_id: None,
        origin,
        notify: smsbridge::store::NotifyFlags::default(),
    };
    let im = |to, from, sender, text, envelope: &smsbridge::store::RelayEnvelope<'static>| {
        smsbridge::store::RelayedIm {
            to,
            from,
            sender,
            text,
            envelope: *envelope,
        }
    };
    let relayed = s
        .enqueue_im(
            &im(bob, alice, "alice", "hi Bob", &env("sip:alice@example.com")),
            t0().plus(5),
            t0().plus(5),
        )
        .unwrap();
    s.mark_inbound_delivered(relayed, bob, t0().plus(50))
        .unwrap();
    let back = s
        .enqueue_im(
            &im(alice, bob, "bob", "hi", &env("wv:bob@example.com")),
            t0().plus(6),
            t0().plus(6),
        )
        .unwrap();
    s.mark_inbound_failed(back, "sender blocked by the user", t0().plus(60))
        .unwrap();
    drop(s);

    assert_eq!(
        db.ok(&["cdr", "export", "--csv"]),
        "time,direction,from,to,modem_imsi,message_id,part,mr,result,detail,outcome,outcome_at\n\
         2026-05-01T12:00:01Z,im_to_sms,sip:alice@example.com,+491701234567,262011234567890,1,1,9,submitted,,delivered,2026-05-01T12:00:20Z\n\
         2026-05-01T12:00:02Z,sms_to_im,+31641600986,sip:alice@example.com,modem-a,1,,,received,,delivered,2026-05-01T12:00:30Z\n\
         2026-05-01T12:00:03Z,sms_to_im,+31641600986,,modem-b,2,,,received,not delivered in time,expired,2026-05-01T12:00:40Z\n\
         2026-05-01T12:00:04Z,sms_to_im,+31641600986,,modem-c,3,,,received,,,\n\
         2026-05-01T12:00:05Z,im_to_im,sip:alice@example.com,wv:bob@example.com,,4,,,received,,delivered,2026-05-01T12:00:50Z\n\
         2026-05-01T12:00:06Z,im_to_im,wv:bob@example.com,sip:alice@example.com,,5,,,received,sender blocked by the user,failed,2026-05-01T12:01:00Z\n"
    );
    let v: Value = serde_json::from_str(&db.ok(&["cdr", "export", "--json"])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 6);
    assert_eq!(
        v[1],
        json!({"time": "2026-05-01T12:00:02Z", "direction": "sms_to_im", "from": "+31641600986",
               "to": "sip:alice@example.com", "modem_imsi": "modem-a", "message_id": 1,
               "part": null, "mr": null, "result": "received", "detail": null,
               "outcome": "delivered", "outcome_at": "2026-05-01T12:00:30Z"})
    );
    assert_eq!(
        v[4],
        json!({"time": "2026-05-01T12:00:05Z", "direction": "im_to_im",
               "from": "sip:alice@example.com", "to": "wv:bob@example.com", "modem_imsi": null,
               "message_id": 4, "part": null, "mr": null, "result": "received", "detail": null,
               "outcome": "delivered", "outcome_at": "2026-05-01T12:00:50Z"})
    );
    // The JSON keys are the CSV columns, in order.
    let keys: Vec<&String> = v[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "time",
            "direction",
            "from",
            "to",
            "modem_imsi",
            "message_id",
            "part",
            "mr",
            "result",
            "detail",
            "outcome",
            "outcome_at"
        ]
    );
    let (code, err) = failure(&db.run(&["cdr", "export", "--csv", "--json"], ""));
    assert_eq!(code, 2, "{err}");
}
