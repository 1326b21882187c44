//! The SQLite store: users, subscribers, contacts, conversations, the outbox with
//! its parts, the inbox with reassembly, status reports and charging records.
//! Every query lives here; the rest of smsbridge sees a typed API. No clock: each
//! call that changes state takes `now` ([`UnixTime`]), so tests control time.
//!
//! # Durability and sharing
//!
//! A [`Store`] wraps one connection and is not shared between threads: open one
//! per worker thread (or use it from `spawn_blocking`). Several processes (the
//! daemon and the command line) may use one file at once: WAL, a 5 s busy
//! timeout, and every write is one `BEGIN IMMEDIATE` transaction, so when a call
//! returns `Ok` its change is on disk (`synchronous=FULL`, rule 3), and when it
//! returns `Err` nothing of it is. The file is created with mode 0600 (SQLite gives
//! the `-wal` and `-shm` files the same mode). The schema is versioned with
//! `PRAGMA user_version`; [`Store::open`] migrates older files and refuses newer ones.
//!
//! # Errors
//!
//! [`StoreError::is_temporary`]: the database cannot be written now (read-only,
//! disk full, locked, I/O): answer "try later" (SIP 503, IMPS 503).
//! [`StoreError::is_bad_input`]: unknown user, invalid number, duplicate…: say what
//! was wrong. Anything else is a bug or a corrupt file.
//!
//! # For the modem worker
//!
//! ```text
//! at start:      release_claims(imsi, now)           parts left "sending" by a crash
//!                                                    become outcome_unknown (rule 4)
//! loop:          claim_next_part(imsi, now) -> Option<ClaimedPart>
//!                  AT+CMGS ok     -> part_sent(part, mr, now)
//!                  refused        -> part_failed(part, error, Retry::At(t) | Retry::Never, now)
//!                  no final result-> part_outcome_unknown(part, now)
//! +CMTI/+CMT:    receive_pdu(imsi, bytes, now) -> Received     then AT+CMGD / AT+CNMA
//! +CDS:          atomically: receive_pdu -> StatusReport(id, report),
//!                apply_report(imsi, &report, now) -> Option<ReportOutcome>,
//!                mark_report_applied(id, matched); at start: unapplied_reports()
//! timer:         expire_reassembly(now, timeout), next_reassembly_deadline(timeout)
//! ```
//!
//! # For the bridge
//!
//! - Users: [`Store::user_by_address`], [`Store::user`], [`Store::verify_password`] (IMPS),
//!   [`User::sip_digest`] (SIP HA1), [`UserSettings`] limits with
//!   [`Store::messages_since`].
//! - IM → SMS: resolve the recipient with [`Store::contact_by_alias`] or
//!   [`normalise_msisdn`], check [`Store::is_blocked`] and
//!   [`Subscriber::opted_out_at`], take [`Store::next_concat_reference`], build the
//!   parts with `pdu::segment`, then [`Store::enqueue`] before answering 202.
//! - Delivery notifications: the [`ReportOutcome`] of `apply_status_report`
//!   (`newly_final` says when to send the IMDN or DeliveryReport), and the state
//!   returned by `part_failed`.
//! - Outcome unknown (rule 4) is a policy: [`Store::requeue_unknown`] (may
//!   duplicate) or [`Store::fail_unknown`].
//! - The report window: [`Store::end_overdue_reports`] ends parts whose status
//!   report did not come in time as delivery unknown (final); their
//!   notifications are then due ([`Store::due_notices`]).
//! - SMS → IM routing, in the bridge's order: [`Store::contact_owners`], else
//!   [`Store::last_writer`], else the configured fallback. Store and forward:
//!   [`Store::pending_inbound`], then `mark_inbound_delivered`, `_retry`,
//!   `_failed` or `_expired`. A "STOP": [`Store::set_opted_out`].

mod cdr;
mod contacts;
mod error;
mod inbox;
mod lists;
mod notices;
mod numbers;
mod outbox;
mod reports;
mod schema;
mod sending;
mod time;
mod users;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

pub use cdr::ChargingRecord;
pub use contacts::{
    Contact, ContactId, Conversation, DEFAULT_LIST, ImportError, NewContact, Subscriber,
};
pub use error::StoreError;
pub use inbox::{InboundId, InboundMessage, InboundState, Received, ReportId};
pub use lists::{IM_RELAY, ImContact, ListEntryRef};
pub use notices::{DueNotice, FailureCause};
pub use numbers::{Msisdn, NumberError, NumberProblem, normalise_msisdn};
pub use outbox::{
    ClaimedPart, FrontEnd, MessageId, MessageState, MessageSummary, NewMessage, PartId, Retry,
};
pub use reports::{REPORT_WINDOW_SECS, ReportOutcome};
pub use time::UnixTime;
pub use users::{BodyFormat, User, UserAddress, UserId, UserSettings, sip_ha1, verify_password};

/// How long a call waits for another connection's write lock before it reports
/// the database as unavailable.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection to the database. See the module documentation.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    default_country_code: Option<String>,
}

impl Store {
    /// Opens (creating it with mode 0600 if missing) and migrates the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        create_private(path)?;
        Self::setup(Connection::open(path)?)
    }

    /// A private database in memory, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Reads the mode back: an in-memory database stays "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn,
            default_country_code: None,
        })
    }

    /// The country code used to read national numbers in received PDUs: senders
    /// of SMS and recipients of status reports (the configuration's
    /// `numbers.default_country_code`).
    pub fn set_default_country_code(&mut self, cc: Option<String>) {
        self.default_country_code = cc;
    }

    /// Runs `PRAGMA integrity_check`: `"ok"`, or SQLite's list of problems.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(lines.join("\n"))
    }

    /// Runs `f` in one IMMEDIATE transaction: all of it is committed, or nothing.
    /// Inside [`Store::atomically`] it runs in a savepoint of that transaction
    /// instead, so the call is still all-or-nothing and the outer decision
    /// commits (or rolls back) everything at once.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.conn.is_autocommit() {
            let sp = self.conn.savepoint()?;
            let value = f(&sp)?;
            sp.commit()?;
            return Ok(value);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` — reads, a decision and its writes — in one `BEGIN IMMEDIATE`
    /// transaction (DESIGN.md rule 8): nobody else writes between the snapshot
    /// `f` reads and the outcome it writes, so limits are exact, and a crash or
    /// an error leaves all of the outcome or none of it. Every store call made
    /// inside joins the transaction. A nested call joins the outer one.
    pub fn atomically<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.conn.is_autocommit() {
            return self.write_nested(f);
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        // An error or a panic inside `f` rolls back, so the connection is never
        // left inside a transaction that nobody will finish.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        let committed = match outcome {
            Ok(Ok(v)) => self
                .conn
                .execute_batch("COMMIT")
                .map(|()| v)
                .map_err(Into::into),
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                self.rollback();
                std::panic::resume_unwind(panic)
            }
        };
        if committed.is_err() {
            self.rollback();
        }
        committed
    }

    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn write_nested<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch("SAVEPOINT nested")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("RELEASE nested")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO nested; RELEASE nested");
                Err(e)
            }
        }
    }
}

/// Creates the file with mode 0600 before SQLite opens it, so the umask cannot
/// make it readable to others. An existing file keeps the mode it has.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::unavailable(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// Serialises a time as RFC 3339 (for JSON output).
fn rfc3339<S: serde::Serializer>(t: &UnixTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<UnixTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}
