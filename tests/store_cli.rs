//! `smsbridge users|contacts|queue|cdr` as an operator runs them: the binary as a
//! process on a temporary database, checked by exact output and by the rows the
//! library reads back.

mod cli_support;

use std::process::{Command, Stdio};

use cli_support::{Db, failure, run, stdout};
use serde_json::{Value, json};
use smsbridge::store::{FrontEnd, NewMessage, Retry, UnixTime, normalise_msisdn};

#[test]
fn users_are_added_listed_and_removed() {
    let db = Db::new();
    let o = db.run(
        &[
            "users",
            "add",
            "sip:alice@Example.com",
            "--password-stdin",
            "--display",
            "Alice A.",
        ],
        "s3cret\n",
    );
    assert_eq!(stdout(&o), "added user sip:alice@example.com\n");
    assert_eq!(
        db.ok(&["users", "add", "wv:bob@example.com", "--no-sms"]),
        "added user wv:bob@example.com\n"
    );
    assert_eq!(
        db.ok(&["users", "list"]),
        "SIP                    IMPS                NAME      SMS  PER MINUTE  PER DAY  PHONE  OFFLINE  PASSWORD\n\
         sip:alice@example.com  -                   Alice A.  yes  10          200      -      store    yes\n\
         -                      wv:bob@example.com  -         no   10          200      -      store    no\n"
    );
    let v: Value = serde_json::from_str(&db.ok(&["users", "list", "--json"])).unwrap();
    assert_eq!(
        v[0],
        json!({"sip": "sip:alice@example.com", "imps": null, "display_name": "Alice A.",
               "may_send_sms": true, "rate_per_minute": 10, "daily_cap": 200,
               "anonymous": false, "body_format": "plain", "phone": null,
               "offline_delivery": "store", "has_password": true})
    );
    assert_eq!(v.as_array().unwrap().len(), 2);
    let s = db.store();
    let alice = s.user_by_address("sip:alice@example.com").unwrap().unwrap();
    assert!(s.verify_password(&alice, "s3cret"));
    let (realm, ha1) = alice.sip_digest.clone().unwrap();
    assert_eq!(
        (realm.as_str(), ha1),
        (
            "smsbridge",
            smsbridge::store::sip_ha1("alice", "smsbridge", "s3cret")
        )
    );

    let o = db.run(
        &[
            "users",
            "passwd",
            "sip:alice@example.com",
            "--password-stdin",
        ],
        "n3w\r\n",
    );
    assert_eq!(stdout(&o), "password set for sip:alice@example.com\n");
    let alice = s.user_by_address("sip:alice@example.com").unwrap().unwrap();
    assert!(s.verify_password(&alice, "n3w") && !s.verify_password(&alice, "s3cret"));

    assert_eq!(
        db.ok(&["users", "remove", "wv:bob@example.com"]),
        "removed user wv:bob@example.com\n"
    );
    assert_eq!(s.users().unwrap().len(), 1);
}

#[test]
fn bad_user_input_exits_2_with_one_line() {
    let db = Db::new();
    db.ok(&["users", "add", "sip:alice@example.com"]);
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["users", "add", "sip:alice@example.com"],
            "",
            "smsbridge: user sip:alice@example.com already exists\n",
        ),
        (
            &["users", "add", "alice"],
            "",
            "smsbridge: invalid user address \"alice\": expected sip:user@host or wv:user@domain\n",
        ),
        (
            &["users", "remove", "sip:carol@example.com"],
            "",
            "smsbridge: unknown user sip:carol@example.com\n",
        ),
        (
            &[
                "users",
                "passwd",
                "sip:alice@example.com",
                "--password-stdin",
            ],
            "",
            "smsbridge: no password on standard input\n",
        ),
        (
            &["users", "add", "sip:bob@example.com", "--password-stdin"],
            "\n",
            "smsbridge: no password on standard input\n",
        ),
    ];
    for (args, stdin, err) in cases {
        assert_eq!(
            failure(&db.run(args, stdin)),
            (2, err.to_owned()),
            "{args:?}"
        );
    }
    assert_eq!(db.store().users().unwrap().len(), 1);
}

#[test]
fn contacts_are_added_blocked_listed_and_removed() {
    let db = Db::new();
    db.ok(&["users", "add", "sip:alice@example.com"]);
    db.ok(&["users", "add", "wv:bob@example.com"]);
    assert_eq!(
        db.ok(&[
            "contacts",
            "add",
            "--user",
            "sip:alice@example.com",
            "--msisdn",
            "+49 (170) 123-4567",
            "--name",
            "Mum",
            "--alias",
            "Mum"
        ]),
        "added contact +491701234567 for sip:alice@example.com\n"
    );
    db.ok(&[
        "contacts",
        "add",
        "--user",
        "wv:bob@example.com",
        "--msisdn",
        "00491709999999",
    ]);
    assert_eq!(
        db.ok(&[
            "contacts",
            "block",
            "--user",
            "wv:bob@example.com",
            "--msisdn",
            "+491709999999"
        ]),
        "blocked +491709999999 for wv:bob@example.com\n"
    );
    assert_eq!(
        db.ok(&["contacts", "list"]),
        "USER                   MSISDN         NAME  ALIAS  LIST  BLOCKED\n\
         sip:alice@example.com  +491701234567  Mum   mum    SMS   no\n\
         wv:bob@example.com     +491709999999  -     -      SMS   yes\n"
    );
    let v: Value = serde_json::from_str(&db.ok(&[
        "contacts",
        "list",
        "--user",
        "wv:bob@example.com",
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        v,
        json!([{"id": 2, "user": "wv:bob@example.com", "msisdn": "+491709999999", "nickname": null,
                "alias": null, "list_name": "SMS", "blocked": true}])
    );
    db.ok(&[
        "contacts",
        "unblock",
        "--user",
        "wv:bob@example.com",
        "--msisdn",
        "+491709999999",
    ]);
    let m = normalise_msisdn("+491709999999", None).unwrap();
    assert_eq!(db.store().contact_owners(&m).unwrap().len(), 1);
    assert_eq!(
        db.ok(&[
            "contacts",
            "remove",
            "--user",
            "wv:bob@example.com",
            "--msisdn",
            "+491709999999"
        ]),
        "removed contact +491709999999 of wv:bob@example.com\n"
    );
    assert_eq!(db.store().contacts(None).unwrap().len(), 1);

    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "contacts",
                "add",
                "--user",
                "sip:alice@example.com",
                "--msisdn",
                "0170 1234567",
            ],
            "smsbridge: invalid number \"0170 1234567\": it is a national number and no default country code is configured (numbers.default_country_code); write it as +<country code>…\n",
        ),
        (
            &[
                "contacts",
                "add",
                "--user",
                "sip:alice@example.com",
                "--msisdn",
                "+49170abc",
            ],
            "smsbridge: invalid number \"+49170abc\": 'a' is not allowed (only digits, a leading + and spaces, dashes, dots, parentheses)\n",
        ),
        (
            &[
                "contacts",
                "remove",
                "--user",
                "sip:alice@example.com",
                "--msisdn",
                "+491700000000",
            ],
            "smsbridge: sip:alice@example.com has no contact +491700000000\n",
        ),
    ];
    for (args, err) in cases {
        assert_eq!(failure(&db.run(args, "")), (2, err.to_owned()), "{args:?}");
    }
}

#[test]
fn import_is_all_or_nothing_and_reports_bad_rows_by_line() {
    let db = Db::new();
    db.ok(&["users", "add", "sip:alice@example.com"]);
    db.ok(&[
        "contacts",
        "add",
        "--user",
        "sip:alice@example.com",
        "--msisdn",
        "+491700000000",
        "--alias",
        "taken",
    ]);
    let csv = db.dir().join("contacts.csv");
    std::fs::write(
        &csv,
        "msisdn, alias ,user,name\n\
         +491701111111,a,sip:alice@example.com,Ann\n\
         0172 222,b,sip:alice@example.com,\n\
         +491703333333,taken,sip:alice@example.com,\n\
         +491704444444,,sip:nobody@example.com,Nobody\n\
         +491705555555,e,sip:alice@example.com\n\
         +491706666666,f,sip:alice@example.com,Fay\n",
    )
    .unwrap();
    let path = csv.to_str().unwrap();
    let (code, err) = failure(&db.run(&["contacts", "import", path], ""));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "smsbridge: {path}: line 3: invalid number \"0172 222\": it is a national number and no default country code is configured (numbers.default_country_code); write it as +<country code>…\n\
             smsbridge: {path}: line 4: alias taken of sip:alice@example.com already exists\n\
             smsbridge: {path}: line 5: unknown user sip:nobody@example.com\n\
             smsbridge: {path}: line 6: 3 fields, but the header has 4\n\
             smsbridge: {path}: nothing imported (4 bad rows)\n"
        )
    );
    assert_eq!(
        db.store().contacts(None).unwrap().len(),
        1,
        "rows were imported"
    );

    std::fs::write(
        &csv,
        "user,msisdn,name\nsip:alice@example.com,+491701111111,Ann\nsip:alice@example.com,+491706666666,\n",
    )
    .unwrap();
    assert_eq!(
        db.ok(&["contacts", "import", path]),
        "imported 2 contacts\n"
    );
    let contacts = db.store().contacts(None).unwrap();
    assert_eq!(contacts.len(), 3);
    assert_eq!(contacts[1].nickname.as_deref(), Some("Ann"));

    std::fs::write(&csv, "user,number\nsip:alice@example.com,+491701111111\n").unwrap();
    assert_eq!(
        failure(&db.run(&["contacts", "import", path], "")),
        (
            2,
            format!(
                "smsbridge: {path}: line 1: unknown column \"number\" (the columns are user, msisdn, name, alias)\n"
            )
        )
    );
}

/// Queues three messages through the library: one sent, one failed, one queued.
fn fill_queue(db: &Db) {
    db.ok(&["users", "add", "sip:alice@example.com"]);
    let mut s = db.store();
    let alice = s
        .user_by_address("sip:alice@example.com")
        .unwrap()
        .unwrap()
        .id;
    let t0 = UnixTime::parse("2026-05-01T12:00:00Z").unwrap();
    for (i, text) in ["first", "second\nline", "third"].iter().enumerate() {
        s.enqueue(
            &NewMessage {
                user: alice,
                msisdn: normalise_msisdn(&format!("+49170123456{i}"), None).unwrap(),
                text: (*text).into(),
                alphabet: smsbridge::pdu::Alphabet::Gsm7,
                parts: vec![vec![0x00, 0x01, i as u8]],
                im_message_id: None,
                report_requested: false,
                imdn_positive: false,
                imdn_negative: false,
                front_end: FrontEnd::Sip,
            },
            t0,
        )
        .unwrap();
    }
    let p = s.claim_next_part("262011234567890", t0).unwrap().unwrap();
    s.part_sent(p.part, 17, t0.plus(1)).unwrap();
    let p = s
        .claim_next_part("262011234567890", t0.plus(86_400))
        .unwrap()
        .unwrap();
    s.part_failed(p.part, "+CMS ERROR: 500", Retry::Never, t0.plus(86_401))
        .unwrap();
}

#[test]
fn queue_list_shows_states_and_filters() {
    let db = Db::new();
    fill_queue(&db);
    assert_eq!(
        db.ok(&["queue", "list"]),
        // No status report was asked for message 1: it ends delivery unknown
        // once submitted, since no report will come.
        "ID  STATE             USER                   TO             SENT  ATTEMPTS  QUEUED                TEXT         ERROR\n\
         1   delivery_unknown  sip:alice@example.com  +491701234560  1/1   1         2026-05-01T12:00:00Z  first        no status report was requested\n\
         2   failed            sip:alice@example.com  +491701234561  0/1   1         2026-05-01T12:00:00Z  second line  +CMS ERROR: 500\n\
         3   queued            sip:alice@example.com  +491701234562  0/1   0         2026-05-01T12:00:00Z  third        -\n"
    );
    let v: Value =
        serde_json::from_str(&db.ok(&["queue", "list", "--state", "failed", "--json"])).unwrap();
    assert_eq!(
        v,
        json!([{"id": 2, "state": "failed", "user": "sip:alice@example.com", "msisdn": "+491701234561",
                "text": "second\nline", "parts": 1, "parts_sent": 0, "attempts": 1, "im_message_id": null,
                "front_end": "sip", "modem_imsi": null, "last_error": "+CMS ERROR: 500",
                "created_at": "2026-05-01T12:00:00Z", "updated_at": "2026-05-02T12:00:01Z"}])
    );
    assert_eq!(
        db.ok(&["queue", "list", "--state", "delivered", "--json"]),
        "[]\n"
    );
    let (code, err) = failure(&db.run(&["queue", "list", "--state", "lost"], ""));
    assert_eq!(code, 2);
    assert!(err.contains("unknown state \"lost\"; the states are queued, sending, sent, delivered, failed, outcome_unknown, delivery_unknown"), "{err}");
}

#[test]
fn cdr_export_as_table_and_csv_since_a_time() {
    let db = Db::new();
    fill_queue(&db);
    assert_eq!(
        db.ok(&["cdr", "export", "--csv"]),
        "time,direction,from,to,modem_imsi,message_id,part,mr,result,detail,outcome,outcome_at\n\
         2026-05-01T12:00:01Z,im_to_sms,sip:alice@example.com,+491701234560,262011234567890,1,1,17,submitted,,delivery_unknown,2026-05-01T12:00:01Z\n\
         2026-05-02T12:00:01Z,im_to_sms,sip:alice@example.com,+491701234561,262011234567890,2,1,,failed,+CMS ERROR: 500,,\n"
    );
    assert_eq!(
        db.ok(&["cdr", "export", "--since", "2026-05-02"]),
        "TIME                  DIRECTION  FROM                   TO             MODEM            MESSAGE  PART  MR  RESULT  DETAIL           OUTCOME  OUTCOME AT\n\
         2026-05-02T12:00:01Z  im_to_sms  sip:alice@example.com  +491701234561  262011234567890  2        1     -   failed  +CMS ERROR: 500  -        -\n"
    );
    assert_eq!(
        db.ok(&[
            "cdr",
            "export",
            "--csv",
            "--since",
            "2026-05-02T14:00:02+02:00"
        ]),
        "time,direction,from,to,modem_imsi,message_id,part,mr,result,detail,outcome,outcome_at\n"
    );
    let (code, err) = failure(&db.run(&["cdr", "export", "--since", "last week"], ""));
    assert_eq!(code, 2);
    assert!(err.contains("invalid time \"last week\""), "{err}");
}

#[test]
fn the_configuration_file_sets_the_database_and_the_country_code() {
    let db = Db::new();
    let config = db.dir().join("smsbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\npath = {:?}\n[numbers]\ndefault_country_code = \"49\"\n[sip]\nrealm = \"lab\"\n",
            db.path
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smsbridge"));
    cmd.arg("--config").arg(&config).args([
        "users",
        "add",
        "sip:alice@example.com",
        "--password-stdin",
    ]);
    stdout(&run(cmd, "pw\n"));
    // The same file through the environment variable.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smsbridge"));
    cmd.args([
        "contacts",
        "add",
        "--user",
        "sip:alice@example.com",
        "--msisdn",
        "0170 1234567",
    ]);
    cmd.env("SMSBRIDGE_CONFIG", &config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let o = cmd.output().unwrap();
    assert_eq!(
        stdout(&o),
        "added contact +491701234567 for sip:alice@example.com\n"
    );
    let alice = db
        .store()
        .user_by_address("sip:alice@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(alice.sip_digest.unwrap().0, "lab");

    std::fs::write(
        &config,
        "[numbers]\ndefault_country_code = \"49\"\nrealm = \"x\"\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smsbridge"));
    cmd.arg("--config").arg(&config).args(["users", "list"]);
    let (code, err) = failure(&run(cmd, ""));
    assert_eq!(code, 2);
    assert!(
        err.starts_with(&format!(
            "smsbridge: {}:3:1: unknown field `realm`",
            config.display()
        )),
        "{err}"
    );
}

#[test]
fn the_cli_and_a_running_daemon_share_the_database() {
    let db = Db::new();
    // The "daemon": a connection that stays open and keeps reading and writing.
    let mut daemon = db.store();
    daemon
        .add_user(
            Some("sip:alice@example.com"),
            None,
            &Default::default(),
            None,
            "smsbridge",
            UnixTime(0),
        )
        .unwrap();
    let before = daemon.users().unwrap();
    db.ok(&["users", "add", "sip:bob@example.com"]);
    db.ok(&[
        "contacts",
        "add",
        "--user",
        "sip:alice@example.com",
        "--msisdn",
        "+491701234567",
    ]);
    assert_eq!(daemon.users().unwrap().len(), before.len() + 1);
    assert_eq!(daemon.contacts(None).unwrap().len(), 1);
    daemon
        .remove_user("sip:bob@example.com", UnixTime(1))
        .unwrap();
    assert_eq!(
        db.ok(&["users", "list", "--json"]).matches("sip:").count(),
        1
    );
}
