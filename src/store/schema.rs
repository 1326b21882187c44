//! The schema and its migrations. `PRAGMA user_version` is the number of
//! migrations applied; [`migrate`] applies the missing ones in one transaction at
//! open, and refuses a file from a newer build.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::error::StoreError;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only: a
/// released migration is never edited.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10];

/// The schema version this build writes.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

const V1: &str = r#"
CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    sip_aor         TEXT UNIQUE,
    imps_id         TEXT UNIQUE,
    display_name    TEXT,
    password_hash   TEXT,             -- argon2id PHC string, for IMPS Login
    sip_realm       TEXT,             -- the realm sip_ha1 was made for
    sip_ha1         TEXT,             -- MD5(username:realm:password), hex, for SIP digest
    may_send_sms    INTEGER NOT NULL DEFAULT 1 CHECK (may_send_sms IN (0, 1)),
    rate_per_minute INTEGER NOT NULL DEFAULT 10 CHECK (rate_per_minute >= 0),
    daily_cap       INTEGER NOT NULL DEFAULT 200 CHECK (daily_cap >= 0),
    anonymous       INTEGER NOT NULL DEFAULT 0 CHECK (anonymous IN (0, 1)),
    body_format     TEXT NOT NULL DEFAULT 'plain' CHECK (body_format IN ('plain', 'cpim')),
    created_at      INTEGER NOT NULL,
    CHECK (sip_aor IS NOT NULL OR imps_id IS NOT NULL)
);

CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY,
    msisdn          TEXT NOT NULL UNIQUE,
    display_name    TEXT,
    opted_out_at    INTEGER,          -- set by an SMS "STOP"; NULL while opted in
    created_at      INTEGER NOT NULL
);

CREATE TABLE contacts (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers(id),
    nickname        TEXT,
    alias           TEXT,             -- usable as the user part of a SIP URI
    list_name       TEXT NOT NULL DEFAULT 'SMS',
    blocked         INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    created_at      INTEGER NOT NULL,
    UNIQUE (user_id, subscriber_id),
    UNIQUE (user_id, alias)
);
CREATE INDEX contacts_by_subscriber ON contacts(subscriber_id);

CREATE TABLE conversations (
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers(id),
    modem_imsi      TEXT,             -- NULL until a part went out
    last_at         INTEGER NOT NULL,
    PRIMARY KEY (user_id, subscriber_id)
);
CREATE INDEX conversations_by_subscriber ON conversations(subscriber_id, last_at);

CREATE TABLE concat_references (
    subscriber_id   INTEGER PRIMARY KEY REFERENCES subscribers(id),
    next            INTEGER NOT NULL
);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers(id),
    text            TEXT NOT NULL,
    alphabet        TEXT NOT NULL CHECK (alphabet IN ('gsm7', 'ucs2', '8bit')),
    im_message_id   TEXT,
    front_end       TEXT NOT NULL CHECK (front_end IN ('sip', 'imps')),
    report_requested INTEGER NOT NULL CHECK (report_requested IN (0, 1)),
    imdn_positive   INTEGER NOT NULL CHECK (imdn_positive IN (0, 1)),
    imdn_negative   INTEGER NOT NULL CHECK (imdn_negative IN (0, 1)),
    part_count      INTEGER NOT NULL CHECK (part_count BETWEEN 1 AND 255),
    state           TEXT NOT NULL CHECK (state IN
                        ('queued', 'sending', 'sent', 'delivered', 'failed', 'outcome_unknown')),
    modem_imsi      TEXT,             -- the modem the parts stay on, once one went out
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX messages_by_state ON messages(state, modem_imsi, id);
CREATE INDEX messages_by_user ON messages(user_id, created_at);

CREATE TABLE parts (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL CHECK (seq BETWEEN 1 AND 255),
    tpdu            BLOB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN
                        ('queued', 'sending', 'sent', 'delivered', 'failed', 'outcome_unknown')),
    modem_imsi      TEXT,
    mr              INTEGER CHECK (mr BETWEEN 0 AND 255),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_at      INTEGER,
    sent_at         INTEGER,
    last_error      TEXT,
    report_status   INTEGER,          -- TP-ST of the latest status report
    report_time     INTEGER,          -- its TP-DT (discharge time)
    report_received_at INTEGER,
    UNIQUE (message_id, seq)
);
CREATE INDEX parts_queued ON parts(message_id, seq) WHERE state = 'queued';
CREATE INDEX parts_sending ON parts(modem_imsi) WHERE state = 'sending';
CREATE INDEX parts_awaiting_report ON parts(modem_imsi, mr, sent_at) WHERE state = 'sent';

CREATE TABLE charging_records (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    user_address    TEXT NOT NULL,    -- copied: records outlive users
    msisdn          TEXT NOT NULL,
    modem_imsi      TEXT NOT NULL,
    message_id      INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    mr              INTEGER,
    result          TEXT NOT NULL CHECK (result IN ('submitted', 'failed', 'unknown')),
    detail          TEXT
);
CREATE INDEX charging_records_by_time ON charging_records(at);

CREATE TABLE inbound (
    id              INTEGER PRIMARY KEY,
    modem_imsi      TEXT NOT NULL,
    sender          TEXT NOT NULL,    -- E.164 when it is a number, else as received
    text            TEXT NOT NULL,
    sent_at         INTEGER,          -- TP-SCTS of the first part
    received_at     INTEGER NOT NULL,
    incomplete      INTEGER NOT NULL DEFAULT 0 CHECK (incomplete IN (0, 1)),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'expired')),
    user_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE INDEX inbound_pending ON inbound(next_attempt_at) WHERE state = 'pending';

CREATE TABLE inbox_pdus (
    id              INTEGER PRIMARY KEY,
    modem_imsi      TEXT NOT NULL,
    pdu             BLOB NOT NULL,    -- as read, SMSC field included
    received_at     INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN
                        ('message', 'part', 'duplicate_part', 'status_report', 'other', 'undecodable')),
    sender          TEXT,
    error           TEXT,
    inbound_id      INTEGER REFERENCES inbound(id),
    UNIQUE (modem_imsi, pdu)
);

CREATE TABLE reassembly (
    modem_imsi      TEXT NOT NULL,
    sender          TEXT NOT NULL,
    reference       INTEGER NOT NULL,
    total           INTEGER NOT NULL,
    wide            INTEGER NOT NULL CHECK (wide IN (0, 1)),
    seq             INTEGER NOT NULL,
    pdu_id          INTEGER NOT NULL REFERENCES inbox_pdus(id),
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (modem_imsi, sender, reference, total, wide, seq)
);
"#;

/// IMPS: the secret for the nonce/digest Login (it hashes nonce‖password, so the
/// password itself is needed, as SIP needs its HA1), contacts that are users of
/// the bridge, and contact lists that exist before their first contact.
const V2: &str = r#"
ALTER TABLE users ADD COLUMN imps_secret TEXT;

CREATE TABLE im_contacts (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    contact_user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    nickname        TEXT,
    list_name       TEXT NOT NULL DEFAULT 'SMS',
    blocked         INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    created_at      INTEGER NOT NULL,
    UNIQUE (user_id, contact_user_id)
);
CREATE INDEX im_contacts_by_contact ON im_contacts(contact_user_id);

CREATE TABLE contact_lists (
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, name)
);
"#;

/// Delivery notifications are kept with their message until the sender's front
/// end took them: `notified_at` NULL while one is owed (messages already final
/// before this version count as notified), `fail_cause` says why a message failed.
///
/// Status reports are stored and applied in one transaction; a report stored
/// without being applied (the apply step failed, or a build before this one
/// stopped in between) has `report_applied` NULL and is applied by the sweep at
/// start-up. 1: it matched a part; 0: it matched none (late, foreign).
const V3: &str = r#"
ALTER TABLE inbox_pdus ADD COLUMN report_applied INTEGER CHECK (report_applied IN (0, 1));
CREATE INDEX inbox_pdus_unapplied ON inbox_pdus(id)
    WHERE kind = 'status_report' AND report_applied IS NULL;

ALTER TABLE messages ADD COLUMN fail_cause TEXT
    CHECK (fail_cause IN ('expired', 'not_sent', 'rejected', 'outcome_unknown'));
ALTER TABLE messages ADD COLUMN notified_at INTEGER;
ALTER TABLE messages ADD COLUMN notify_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN notify_next_at INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET notified_at = updated_at WHERE state IN ('delivered', 'failed');

-- The IMPS 4-way Login keeps the password in clear; it is now opt-in per user
-- (smsbridge users imps-digest), so the copies every IMPS user got are dropped.
UPDATE users SET imps_secret = NULL;
CREATE INDEX messages_notice_due ON messages(notify_next_at)
    WHERE notified_at IS NULL AND state IN ('delivered', 'failed');
"#;

/// Delivery unknown: a part whose status report did not come within the report
/// window ends as `delivery_unknown`, and so does a message whose parts all
/// ended delivered or delivery unknown. The `state` CHECKs of `messages` and
/// `parts` cannot be altered in place, so both tables are rebuilt as SQLite's
/// documentation describes (create new, copy, drop old, rename, recreate the
/// indexes); [`migrate`] runs this with foreign keys off and checks them before
/// it commits. Row ids are kept, so every reference stays valid.
///
/// The charging record of a submitted part gets the part's outcome once known:
/// `delivered` or `failed` from its status report, `delivery_unknown` when the
/// window ended, with the time it was recorded.
const V4: &str = r#"
CREATE TABLE new_messages (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    subscriber_id   INTEGER NOT NULL REFERENCES subscribers(id),
    text            TEXT NOT NULL,
    alphabet        TEXT NOT NULL CHECK (alphabet IN ('gsm7', 'ucs2', '8bit')),
    im_message_id   TEXT,
    front_end       TEXT NOT NULL CHECK (front_end IN ('sip', 'imps')),
    report_requested INTEGER NOT NULL CHECK (report_requested IN (0, 1)),
    imdn_positive   INTEGER NOT NULL CHECK (imdn_positive IN (0, 1)),
    imdn_negative   INTEGER NOT NULL CHECK (imdn_negative IN (0, 1)),
    part_count      INTEGER NOT NULL CHECK (part_count BETWEEN 1 AND 255),
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'delivered',
                        'failed', 'outcome_unknown', 'delivery_unknown')),
    modem_imsi      TEXT,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    fail_cause      TEXT CHECK (fail_cause IN
                        ('expired', 'not_sent', 'rejected', 'outcome_unknown', 'delivery_unknown')),
    notified_at     INTEGER,
    notify_attempts INTEGER NOT NULL DEFAULT 0,
    notify_next_at  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO new_messages (id, user_id, subscriber_id, text, alphabet, im_message_id, front_end,
        report_requested, imdn_positive, imdn_negative, part_count, state, modem_imsi, last_error,
        created_at, updated_at, fail_cause, notified_at, notify_attempts, notify_next_at)
    SELECT id, user_id, subscriber_id, text, alphabet, im_message_id, front_end,
        report_requested, imdn_positive, imdn_negative, part_count, state, modem_imsi, last_error,
        created_at, updated_at, fail_cause, notified_at, notify_attempts, notify_next_at
    FROM messages;

CREATE TABLE new_parts (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL CHECK (seq BETWEEN 1 AND 255),
    tpdu            BLOB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'delivered',
                        'failed', 'outcome_unknown', 'delivery_unknown')),
    modem_imsi      TEXT,
    mr              INTEGER CHECK (mr BETWEEN 0 AND 255),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_at      INTEGER,
    sent_at         INTEGER,
    last_error      TEXT,
    report_status   INTEGER,
    report_time     INTEGER,
    report_received_at INTEGER,
    UNIQUE (message_id, seq)
);
INSERT INTO new_parts (id, message_id, seq, tpdu, state, modem_imsi, mr, attempts,
        next_attempt_at, claimed_at, sent_at, last_error, report_status, report_time,
        report_received_at)
    SELECT id, message_id, seq, tpdu, state, modem_imsi, mr, attempts,
        next_attempt_at, claimed_at, sent_at, last_error, report_status, report_time,
        report_received_at
    FROM parts;

DROP TABLE parts;
DROP TABLE messages;
ALTER TABLE new_messages RENAME TO messages;
ALTER TABLE new_parts RENAME TO parts;

CREATE INDEX messages_by_state ON messages(state, modem_imsi, id);
CREATE INDEX messages_by_user ON messages(user_id, created_at);
CREATE INDEX messages_notice_due ON messages(notify_next_at)
    WHERE notified_at IS NULL AND state IN ('delivered', 'failed', 'delivery_unknown');
CREATE INDEX parts_queued ON parts(message_id, seq) WHERE state = 'queued';
CREATE INDEX parts_sending ON parts(modem_imsi) WHERE state = 'sending';
CREATE INDEX parts_awaiting_report ON parts(modem_imsi, mr, sent_at) WHERE state = 'sent';
-- The report-window sweep: the oldest sent parts first, and only those.
CREATE INDEX parts_sent_at ON parts(sent_at) WHERE state = 'sent';

ALTER TABLE charging_records ADD COLUMN outcome TEXT
    CHECK (outcome IN ('delivered', 'failed', 'delivery_unknown'));
ALTER TABLE charging_records ADD COLUMN outcome_at INTEGER;
CREATE INDEX charging_records_by_part ON charging_records(message_id, seq)
    WHERE result = 'submitted';
"#;

/// Charging records for every interworking direction: `direction` says which
/// (`im_to_sms` per submitted part as before; `sms_to_im` and `im_to_im` per
/// message received for a user, kept when it is received, with `result`
/// `received`), and the outcome of an inbound message may be `expired`. The
/// `result` and `outcome` CHECKs must widen and `msisdn`, `modem_imsi` and
/// `seq` become optional (an IM between users has none), so the table is
/// rebuilt as V4 rebuilt `messages`, ids kept. `user_address` is the IM user
/// (the sender, or the recipient of an SMS once it is routed), `msisdn` the
/// subscriber (the sender of an SMS as received), `peer_address` the user an
/// IM between users is for.
const V5: &str = r#"
CREATE TABLE new_charging_records (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    direction       TEXT NOT NULL DEFAULT 'im_to_sms'
                        CHECK (direction IN ('im_to_sms', 'sms_to_im', 'im_to_im')),
    user_address    TEXT,
    msisdn          TEXT,
    peer_address    TEXT,
    modem_imsi      TEXT,
    message_id      INTEGER NOT NULL, -- messages.id for im_to_sms, else inbound.id
    seq             INTEGER,
    mr              INTEGER,
    result          TEXT NOT NULL CHECK (result IN ('submitted', 'failed', 'unknown', 'received')),
    detail          TEXT,
    outcome         TEXT CHECK (outcome IN ('delivered', 'failed', 'delivery_unknown', 'expired')),
    outcome_at      INTEGER
);
INSERT INTO new_charging_records (id, at, direction, user_address, msisdn, modem_imsi,
        message_id, seq, mr, result, detail, outcome, outcome_at)
    SELECT id, at, 'im_to_sms', user_address, msisdn, modem_imsi,
        message_id, seq, mr, result, detail, outcome, outcome_at
    FROM charging_records;
DROP TABLE charging_records;
ALTER TABLE new_charging_records RENAME TO charging_records;
CREATE INDEX charging_records_by_time ON charging_records(at);
CREATE INDEX charging_records_by_part ON charging_records(message_id, seq)
    WHERE result = 'submitted';
CREATE INDEX charging_records_by_inbound ON charging_records(message_id)
    WHERE direction <> 'im_to_sms';
"#;

/// Users of other domains (issue 13): contacts in a user's lists that are
/// neither subscribers nor users of the bridge, by their `sip:user@domain`
/// address, with a nickname, a list and a block (a block of a foreign address
/// stays when its list goes, as the others do). An SMS a user of another
/// domain sent (when `[federation] foreign_to_sms` allows it) has no user
/// row: `foreign_sender` names the sender, and its charging records carry
/// that address.
const V6: &str = r#"
CREATE TABLE foreign_contacts (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address         TEXT NOT NULL CHECK (address LIKE 'sip:%@%'),
    nickname        TEXT,
    list_name       TEXT NOT NULL DEFAULT 'SMS',
    blocked         INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    created_at      INTEGER NOT NULL,
    UNIQUE (user_id, address)
);
CREATE INDEX foreign_contacts_by_address ON foreign_contacts(address);

ALTER TABLE messages ADD COLUMN foreign_sender TEXT;
CREATE INDEX messages_by_foreign_sender ON messages(foreign_sender, created_at)
    WHERE foreign_sender IS NOT NULL;
"#;

/// Presence authorisation (issue 14): each user's access policy as a
/// presentity (RFC 4745/5025 rules, in order, each about one watcher, one
/// domain or anyone) and the watchers the bridge has seen, with where each
/// stands (pending ones wait here across restarts for the presentity's
/// answer). A user with a SIP AOR and an IMPS UserID is one presentity: the
/// rows hang off the user. Addresses are stored normalised (scheme and host
/// lower-case).
const V7: &str = r#"
CREATE TABLE presence_rules (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    rule_id         TEXT NOT NULL CHECK (length(rule_id) > 0),
    position        INTEGER NOT NULL,
    match_kind      TEXT NOT NULL CHECK (match_kind IN ('identity', 'domain', 'anyone')),
    match_value     TEXT,             -- the address or the domain; NULL for anyone
    handling        TEXT NOT NULL
                        CHECK (handling IN ('block', 'confirm', 'polite-block', 'allow')),
    CHECK ((match_kind = 'anyone') = (match_value IS NULL)),
    UNIQUE (user_id, rule_id)
);
CREATE INDEX presence_rules_by_user ON presence_rules(user_id, position);

CREATE TABLE watchers (
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    watcher         TEXT NOT NULL,
    decision        TEXT NOT NULL
                        CHECK (decision IN ('allow', 'polite-block', 'block', 'pending')),
    since           INTEGER NOT NULL,
    PRIMARY KEY (user_id, watcher)
);
"#;

/// Delivery notifications between users, store and forward that waits for
/// the client, and the recipient's interworking preference (issue 15).
/// `inbound` rows that are IMs keep their sender's envelope (message id,
/// address, the notifications asked for); a `notice` row is a delivery or
/// display notification owed to a user, delivered like a message (now, or
/// when they come back). `offered_at` marks a message handed to a client
/// that has not confirmed it (IMPS push): still pending. A user may name
/// their own phone and have IMs sent there as SMS while offline; such an
/// SMS remembers whom it was for (`messages.for_user_id`), so the reply
/// from that phone comes back as an IM from the user.
const V8: &str = r#"
ALTER TABLE inbound ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'notice'));
ALTER TABLE inbound ADD COLUMN im_message_id TEXT;
ALTER TABLE inbound ADD COLUMN origin TEXT;           -- the sending user's whole address
ALTER TABLE inbound ADD COLUMN origin_user_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE inbound ADD COLUMN notify_delivered INTEGER NOT NULL DEFAULT 0
    CHECK (notify_delivered IN (0, 1));
ALTER TABLE inbound ADD COLUMN notify_failed INTEGER NOT NULL DEFAULT 0
    CHECK (notify_failed IN (0, 1));
ALTER TABLE inbound ADD COLUMN notify_displayed INTEGER NOT NULL DEFAULT 0
    CHECK (notify_displayed IN (0, 1));
ALTER TABLE inbound ADD COLUMN disposition TEXT       -- of a notice row
    CHECK (disposition IN ('delivered', 'failed', 'displayed'));
ALTER TABLE inbound ADD COLUMN offered_at INTEGER;
CREATE INDEX inbound_by_im_message_id ON inbound(user_id, im_message_id)
    WHERE im_message_id IS NOT NULL;

ALTER TABLE users ADD COLUMN phone TEXT;              -- E.164 with +, the user's own
ALTER TABLE users ADD COLUMN offline_delivery TEXT NOT NULL DEFAULT 'store'
    CHECK (offline_delivery IN ('store', 'sms'));
ALTER TABLE messages ADD COLUMN for_user_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
"#;

/// How many messages are in each state, kept by triggers in the transaction
/// that changes them: the outbox limit reads the queue length for every
/// batch of IMs, and counting a queue of 100,000 rows each time made every
/// batch slower as the queue grew. A later migration that rebuilds
/// `messages` must create these triggers again.
const V9: &str = r#"
CREATE TABLE message_counts (
    state   TEXT PRIMARY KEY,
    n       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO message_counts (state, n)
    SELECT s.state, (SELECT count(*) FROM messages m WHERE m.state = s.state)
    FROM (SELECT 'queued' AS state UNION ALL SELECT 'sending' UNION ALL SELECT 'sent'
          UNION ALL SELECT 'delivered' UNION ALL SELECT 'failed'
          UNION ALL SELECT 'outcome_unknown') s;
CREATE TRIGGER message_counts_insert AFTER INSERT ON messages BEGIN
    UPDATE message_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER message_counts_delete AFTER DELETE ON messages BEGIN
    UPDATE message_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER message_counts_update AFTER UPDATE OF state ON messages
    WHEN OLD.state <> NEW.state BEGIN
    UPDATE message_counts SET n = n - 1 WHERE state = OLD.state;
    UPDATE message_counts SET n = n + 1 WHERE state = NEW.state;
END;
"#;

/// Every CHECK of a column against three or more values, and the partial
/// index of the notices due, compare with `=` and `OR` instead of `IN (...)`.
/// SQLite evaluates a constant `IN` list of more than two values through a
/// temporary B-tree that it builds and frees on every row written (a page
/// cache each time): four of them for each message queued, a third of the
/// time of a group commit. The rows already there satisfy both forms alike.
///
/// The tables' SQL is changed in place as SQLite's documentation describes
/// for CHECK constraints (`writable_schema`, which leaves the file format as
/// it is), no table is rebuilt; `RESET` makes this connection read the schema
/// again, and the index dropped and created after it moves the schema version
/// so that every other connection reads it again too.
const V10: &str = r#"
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(replace(sql,
    'state IN (''pending'', ''delivered'', ''failed'', ''expired'')',
    'state = ''pending'' OR state = ''delivered'' OR state = ''failed'' OR state = ''expired'''),
    'disposition IN (''delivered'', ''failed'', ''displayed'')',
    'disposition = ''delivered'' OR disposition = ''failed'' OR disposition = ''displayed''')
  WHERE type = 'table' AND name = 'inbound';
UPDATE sqlite_schema SET sql = replace(sql,
    'kind IN
                        (''message'', ''part'', ''duplicate_part'', ''status_report'', ''other'', ''undecodable'')',
    'kind = ''message'' OR kind = ''part'' OR kind = ''duplicate_part'' OR kind = ''status_report'' OR kind = ''other'' OR kind = ''undecodable''')
  WHERE type = 'table' AND name = 'inbox_pdus';
UPDATE sqlite_schema SET sql = replace(replace(replace(sql,
    'alphabet IN (''gsm7'', ''ucs2'', ''8bit'')',
    'alphabet = ''gsm7'' OR alphabet = ''ucs2'' OR alphabet = ''8bit'''),
    'state IN (''queued'', ''sending'', ''sent'', ''delivered'',
                        ''failed'', ''outcome_unknown'', ''delivery_unknown'')',
    'state = ''queued'' OR state = ''sending'' OR state = ''sent'' OR state = ''delivered'' OR state = ''failed'' OR state = ''outcome_unknown'' OR state = ''delivery_unknown'''),
    'fail_cause IN
                        (''expired'', ''not_sent'', ''rejected'', ''outcome_unknown'', ''delivery_unknown'')',
    'fail_cause = ''expired'' OR fail_cause = ''not_sent'' OR fail_cause = ''rejected'' OR fail_cause = ''outcome_unknown'' OR fail_cause = ''delivery_unknown''')
  WHERE type = 'table' AND name = 'messages';
UPDATE sqlite_schema SET sql = replace(sql,
    'state IN (''queued'', ''sending'', ''sent'', ''delivered'',
                        ''failed'', ''outcome_unknown'', ''delivery_unknown'')',
    'state = ''queued'' OR state = ''sending'' OR state = ''sent'' OR state = ''delivered'' OR state = ''failed'' OR state = ''outcome_unknown'' OR state = ''delivery_unknown''')
  WHERE type = 'table' AND name = 'parts';
UPDATE sqlite_schema SET sql = replace(replace(replace(sql,
    'direction IN (''im_to_sms'', ''sms_to_im'', ''im_to_im'')',
    'direction = ''im_to_sms'' OR direction = ''sms_to_im'' OR direction = ''im_to_im'''),
    'result IN (''submitted'', ''failed'', ''unknown'', ''received'')',
    'result = ''submitted'' OR result = ''failed'' OR result = ''unknown'' OR result = ''received'''),
    'outcome IN (''delivered'', ''failed'', ''delivery_unknown'', ''expired'')',
    'outcome = ''delivered'' OR outcome = ''failed'' OR outcome = ''delivery_unknown'' OR outcome = ''expired''')
  WHERE type = 'table' AND name = 'charging_records';
UPDATE sqlite_schema SET sql = replace(replace(sql,
    'match_kind IN (''identity'', ''domain'', ''anyone'')',
    'match_kind = ''identity'' OR match_kind = ''domain'' OR match_kind = ''anyone'''),
    'handling IN (''block'', ''confirm'', ''polite-block'', ''allow'')',
    'handling = ''block'' OR handling = ''confirm'' OR handling = ''polite-block'' OR handling = ''allow''')
  WHERE type = 'table' AND name = 'presence_rules';
UPDATE sqlite_schema SET sql = replace(sql,
    'decision IN (''allow'', ''polite-block'', ''block'', ''pending'')',
    'decision = ''allow'' OR decision = ''polite-block'' OR decision = ''block'' OR decision = ''pending''')
  WHERE type = 'table' AND name = 'watchers';
PRAGMA writable_schema = RESET;
DROP INDEX messages_notice_due;
CREATE INDEX messages_notice_due ON messages(notify_next_at)
    WHERE notified_at IS NULL
      AND (state = 'delivered' OR state = 'failed' OR state = 'delivery_unknown');
"#;

/// Applies the missing migrations in one IMMEDIATE transaction, so that two
/// processes opening a new file at once do not both migrate it. Foreign keys
/// are off meanwhile (a table rebuild drops a table others refer to; with them
/// on, the drop would delete the rows that refer to it) and are checked before
/// the commit; they are on again afterwards whatever happened.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let fk: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = migrate_without_foreign_keys(conn);
    conn.pragma_update(None, "foreign_keys", fk)?;
    result
}

fn migrate_without_foreign_keys(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(StoreError::NewerSchema {
            found,
            supported: VERSION,
        });
    }
    if found == VERSION {
        return Ok(());
    }
    for sql in &MIGRATIONS[usize::try_from(found).unwrap_or(0)..] {
        tx.execute_batch(sql)?;
    }
    let broken: Option<String> = tx
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .optional()?;
    if let Some(table) = broken {
        return Err(StoreError::Migration(format!(
            "a row of {table} refers to a row that does not exist"
        )));
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}
