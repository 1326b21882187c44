//! Store tests: every use case against an in-memory or temporary file database,
//! checking rows in SQLite as well as what the API returns.

mod admin;
mod atomic;
mod authz;
mod durability;
mod foreign;
mod inbox;
mod offered;
mod outbox;
mod people;
mod prefs;
mod relay;
mod report_window;
mod statements;

use super::*;
use crate::pdu::{
    self, Address, DataCoding, Deliver, EncodeOptions, Pdu, Status, Submit, Timestamp, Tpdu,
    UserData,
};

pub(super) const T0: UnixTime = UnixTime(1_777_638_896);
pub(super) const MODEM_A: &str = "262011234567890";
pub(super) const MODEM_B: &str = "262029876543210";

pub(super) fn mem() -> Store {
    Store::open_in_memory().unwrap()
}

/// A file at `path` as a build with schema `version` left it: user 1 (alice),
/// subscriber 1 (+491701234567), and the rows `sql` adds.
pub(super) fn old_file(path: &std::path::Path, version: usize, sql: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    for m in &super::schema::MIGRATIONS[..version] {
        c.execute_batch(m).unwrap();
    }
    c.pragma_update(None, "user_version", i64::try_from(version).unwrap())
        .unwrap();
    c.execute_batch(
        "INSERT INTO users (id, sip_aor, created_at) VALUES (1, 'sip:alice@example.com', 0);
         INSERT INTO subscribers (id, msisdn, created_at) VALUES (1, '+491701234567', 0);",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

pub(super) fn num(s: &str) -> Msisdn {
    normalise_msisdn(s, Some("49")).unwrap()
}

pub(super) fn add_alice(s: &mut Store) -> UserId {
    add_sip_user(s, "sip:alice@example.com")
}

/// A SIP user with default settings and no password.
pub(super) fn add_sip_user(s: &mut Store, aor: &str) -> UserId {
    s.add_user(
        Some(aor),
        None,
        &UserSettings::default(),
        None,
        "smsbridge",
        T0,
    )
    .unwrap()
}

/// Every row of a query on the store's own connection, through `f`.
pub(super) fn rows<T>(
    s: &Store,
    sql: &str,
    f: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    let mut stmt = s.conn.prepare(sql).unwrap();
    stmt.query_map([], |r| f(r))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A one-value query on the store's own connection.
pub(super) fn q<T: rusqlite::types::FromSql>(s: &Store, sql: &str) -> T {
    s.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn template(to: &str) -> Submit {
    Submit {
        reject_duplicates: false,
        status_report_request: true,
        reply_path: false,
        mr: 0,
        destination: Address::from_number(to).unwrap(),
        pid: 0,
        dcs: DataCoding::GSM7,
        validity: None,
        user_data: UserData {
            header: None,
            body: pdu::Body::Data(Vec::new()),
        },
    }
}

/// The SMS-SUBMIT parts for `text`, encoded as `AT+CMGS` takes them (`00` SMSC).
pub(super) fn submit_parts(to: &str, text: &str, reference: u16) -> Vec<Vec<u8>> {
    pdu::segment(&template(to), text, reference, &EncodeOptions::default())
        .unwrap()
        .into_iter()
        .map(|s| {
            let mut out = Vec::new();
            Pdu {
                smsc: None,
                tpdu: Tpdu::Submit(s),
            }
            .encode(&mut out)
            .unwrap();
            out
        })
        .collect()
}

pub(super) fn new_message(user: UserId, to: &str, text: &str) -> NewMessage {
    NewMessage {
        user,
        msisdn: num(to),
        text: text.into(),
        alphabet: pdu::plan(text, &EncodeOptions::default()).alphabet,
        parts: submit_parts(to, text, 7),
        im_message_id: Some(format!("im-{text}")),
        report_requested: true,
        imdn_positive: true,
        imdn_negative: true,
        front_end: FrontEnd::Sip,
    }
}

pub(super) fn scts(second: u8) -> Timestamp {
    Timestamp {
        year: 2026,
        month: 5,
        day: 1,
        hour: 14,
        minute: 0,
        second,
        offset_quarters: 8,
    }
}

/// SMS-DELIVER PDUs (SMSC field first, as `AT+CMGR` prints them) of `text` from
/// `from`, cut into parts with concatenation reference `reference`.
pub(super) fn deliver_pdus(from: &str, text: &str, reference: u16, second: u8) -> Vec<Vec<u8>> {
    pdu::segment(
        &template("+4900"),
        text,
        reference,
        &EncodeOptions::default(),
    )
    .unwrap()
    .into_iter()
    .map(|s| {
        let d = Deliver {
            more_messages: false,
            loop_prevention: false,
            status_report_indication: false,
            reply_path: false,
            originator: Address::from_number(from).unwrap(),
            pid: 0,
            dcs: s.dcs,
            scts: scts(second),
            user_data: s.user_data,
        };
        let mut out = Vec::new();
        Pdu {
            smsc: Some(Address::from_number("+491720000000").unwrap()),
            tpdu: Tpdu::Deliver(d),
        }
        .encode(&mut out)
        .unwrap();
        out
    })
    .collect()
}

pub(super) fn delivered() -> Status {
    Status::RECEIVED
}

/// Text that takes two SMS parts.
pub(super) const LONG: &str = "This text is long enough to need two SMS parts because it goes on and on past the hundred and sixty septets that one part can hold, yes it does, really, it does go on.";

/// Sends every part of a message through `modem` with MRs counting from `mr`.
pub(super) fn send_all(s: &mut Store, modem: &str, mr: u8, now: UnixTime) -> Vec<PartId> {
    let mut parts = Vec::new();
    let mut mr = mr;
    while let Some(p) = s.claim_next_part(modem, now).unwrap() {
        s.part_sent(p.part, mr, now).unwrap();
        parts.push(p.part);
        mr = mr.wrapping_add(1);
    }
    parts
}

/// A store with alice, who queued [`LONG`] (two parts) for +491701234567 at
/// `T0`: (store, alice, recipient, message).
pub(super) fn long_message() -> (Store, UserId, Msisdn, MessageId) {
    let mut s = mem();
    let alice = add_alice(&mut s);
    let id = s
        .enqueue(&new_message(alice, "+491701234567", LONG), T0)
        .unwrap();
    (s, alice, num("+491701234567"), id)
}
